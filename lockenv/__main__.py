"""`python -m lockenv`."""

from lockenv.cli import main

if __name__ == "__main__":
    main()
