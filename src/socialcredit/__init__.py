"""socialcredit: an open, auditable simulation of social credit systems over synthetic populations.

The Python API: ``Scenario.load(...)``, ``simulate(...)`` and ``Run.open(...)``. They are
imported on first use, so that importing the package (and ``socialcredit --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Run", "Scenario", "UserError", "__version__", "simulate"]

if TYPE_CHECKING:
    from socialcredit.errors import UserError
    from socialcredit.run import simulate
    from socialcredit.scenario import Scenario
    from socialcredit.store import Run

_LAZY = {
    "Scenario": ("socialcredit.scenario", "Scenario"),
    "simulate": ("socialcredit.run", "simulate"),
    "Run": ("socialcredit.store", "Run"),
    "UserError": ("socialcredit.errors", "UserError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'socialcredit' has no attribute {name!r}")
