"""`python -m lockenv`."""

from lockenv.fastpath import main

if __name__ == "__main__":
    main()
