"""lockenv: universal PEP 751 lockfiles and exact virtual environments."""

__version__ = "0.1.0"
