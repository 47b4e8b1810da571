"""socialcredit: an open, auditable simulation of social credit systems over synthetic populations."""

__version__ = "0.1.0"

__all__ = ["__version__"]
