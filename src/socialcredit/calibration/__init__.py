"""Calibration and sensitivity: a scenario's assumptions against published figures.

:func:`calibrate` fits the parameters of a parameter file to a target file's figures that are
not held out, with optuna (docs/calibration.md); :func:`sensitivity` says which parameter
moves which figure most, with SALib. Both run their trials as sweeps do, in this process or
on Dask. ``china.yaml`` here is the parameter file of the shipped ``china`` scenario.
"""

from socialcredit.calibration.calibrate import CalibrationResult, calibrate
from socialcredit.calibration.params import Parameter, ParameterFile, load_params
from socialcredit.calibration.sensitivity import SensitivityResult, sensitivity

__all__ = [
    "CalibrationResult",
    "Parameter",
    "ParameterFile",
    "SensitivityResult",
    "calibrate",
    "load_params",
    "sensitivity",
]
