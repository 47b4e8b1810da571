"""socialcredit: an open, auditable simulation of social credit systems over synthetic populations.

The Python API: ``Scenario.load(...)``, ``simulate(...)`` and ``Run.open(...)``, and the
analyses ``explain``, ``compare_runs``, ``export_changed`` and ``write_report``, sweeps with
``load_sweep`` and ``run_sweep``. They are imported on first use, so that importing the package
(and ``socialcredit --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Run", "Scenario", "UserError", "__version__", "compare_runs", "explain",
           "export_changed", "load_sweep", "run_sweep", "simulate", "write_report"]

if TYPE_CHECKING:
    from socialcredit.analysis.compare import compare_runs, export_changed
    from socialcredit.analysis.explain import explain
    from socialcredit.analysis.report import write_report
    from socialcredit.errors import UserError
    from socialcredit.run import simulate
    from socialcredit.scenario import Scenario
    from socialcredit.store import Run
    from socialcredit.sweep import load_sweep, run_sweep

_LAZY = {
    "Scenario": ("socialcredit.scenario", "Scenario"),
    "simulate": ("socialcredit.run", "simulate"),
    "Run": ("socialcredit.store", "Run"),
    "UserError": ("socialcredit.errors", "UserError"),
    "explain": ("socialcredit.analysis.explain", "explain"),
    "compare_runs": ("socialcredit.analysis.compare", "compare_runs"),
    "export_changed": ("socialcredit.analysis.compare", "export_changed"),
    "write_report": ("socialcredit.analysis.report", "write_report"),
    "load_sweep": ("socialcredit.sweep", "load_sweep"),
    "run_sweep": ("socialcredit.sweep", "run_sweep"),
}


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'socialcredit' has no attribute {name!r}")
