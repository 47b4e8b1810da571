"""The explorer: ``socialcredit serve``, a read-only web application over runs (DESIGN 7, 8)."""

from socialcredit.web.app import create_app

__all__ = ["create_app"]
