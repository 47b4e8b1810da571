"""Targets: published figures as data, and the comparison of a run with them.

A target file (``socialcredit/targets/*.yaml``, docs/calibration.md) lists figures with
their date, value, unit, source and tag, and the DuckDB query and scale rule that compute
the same quantity from a run. ``socialcredit validate`` and ``report`` show the comparison;
``socialcredit calibrate`` fits a scenario's assumptions to the figures not held out.
"""

from socialcredit.targets.compare import (
    Comparison,
    Spread,
    SweepRun,
    loss,
    over_time,
    series_over_time,
    spread,
    validate_run,
    validate_sweep,
)
from socialcredit.targets.loader import Target, TargetSet, load_targets, shipped_targets

__all__ = [
    "Comparison",
    "Spread",
    "SweepRun",
    "Target",
    "TargetSet",
    "load_targets",
    "loss",
    "over_time",
    "series_over_time",
    "shipped_targets",
    "spread",
    "validate_run",
    "validate_sweep",
]
