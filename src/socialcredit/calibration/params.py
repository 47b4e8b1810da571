"""Parameter files: which assumptions of a scenario calibration and sensitivity vary.

A parameter file (YAML) names each parameter by its dotted path in the scenario (as an
overlay's ``set`` does, a dated value's entry by its date), with bounds and, optionally, a
log scale::

    citizens: 200000          # simulated citizens per trial (optional)
    seeds: [2013, 2014]       # each trial runs once per seed (optional; default the scenario's)
    parameters:
      - path: behaviour.repayment_per_year
        low: 0.1
        high: 2.0
        log: true
        why: "assumption: the hazard of meeting an obligation"

Every path must name a number the scenario already gives (so only what the scenario marks
as an assumption is varied, and nothing is added); mistakes are one sentence with the file
and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from socialcredit.errors import UserError

__all__ = ["Parameter", "ParameterFile", "load_params"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Strict):
    path: Annotated[str, Field(min_length=1)]
    low: float
    high: float
    log: bool = False
    why: str = ""

    @model_validator(mode="after")
    def _bounds(self) -> Parameter:
        if not self.low < self.high:
            raise ValueError(f"{self.path} needs low < high, not {self.low:g} and {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.path} is on a log scale, so its bounds must be positive")
        return self


class ParameterFile(_Strict):
    description: str = ""
    citizens: Annotated[int, Field(gt=0)] | None = None
    #: days to report per trial (default: through the last figure the study fits)
    days: Annotated[int, Field(gt=0)] | None = None
    parameters: Annotated[list[Parameter], Field(min_length=1)]
    #: the seeds of every trial's runs (default: the scenario's seed): a trial runs once per
    #: seed and is judged on the mean of the runs' figures, so that a fit follows the model
    #: rather than one seed's noise
    seeds: Annotated[list[int], Field(min_length=1)] | None = None
    #: the targets this study fits (ids of the target file; default: every one not held out).
    #: The others are still computed and written with each trial, not fitted.
    fit: list[Annotated[str, Field(min_length=1)]] | None = None

    _path: Path | None = PrivateAttr(default=None)
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> ParameterFile:
        seen: set[str] = set()
        for p in self.parameters:
            if p.path in seen:
                raise ValueError(f"the parameter {p.path} appears twice")
            seen.add(p.path)
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError("a seed appears twice in seeds")
        return self

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def names(self) -> list[str]:
        return [p.path for p in self.parameters]

    def check_targets(self, targets: Any) -> None:
        """Check that every target named by ``fit`` is a fitted target of ``targets``."""
        from socialcredit.scenario import _line_for

        known = {t.id: t for t in targets.targets}
        for k, name in enumerate(self.fit or []):
            line = _line_for(self._lines, ("fit", k))
            if name not in known:
                raise UserError(f"the target {name} to fit is not in the targets "
                                f"{targets.name}", path=self._path, line=line)
            if known[name].holdout:
                raise UserError(f"the target {name} is held out, so a study cannot fit it",
                                path=self._path, line=line)

    def check_against(self, scenario: Any) -> None:
        """Check that every path names a number of ``scenario`` (a loaded Scenario)."""
        from socialcredit.scenario import _line_for, get_path

        data = scenario.to_dict()
        for k, p in enumerate(self.parameters):
            line = _line_for(self._lines, ("parameters", k, "path"))
            try:
                value = get_path(data, p.path)
            except KeyError as err:
                raise UserError(f"{p.path} is not a value of the scenario {scenario.name} "
                                f"({err.args[0]})", path=self._path, line=line) from None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UserError(f"{p.path} is not a number in the scenario {scenario.name}",
                                path=self._path, line=line)


def load_params(path: str | Path) -> ParameterFile:
    """Read and check a parameter file (a path, or a shipped one's name under
    ``socialcredit/calibration/``)."""
    from importlib import resources

    from socialcredit.scenario import _line_map, _user_error, plain_value, read_yaml_mapping

    p = Path(path).expanduser()
    if not p.is_file():
        shipped = resources.files("socialcredit") / "calibration" / f"{path}.yaml"
        if "/" not in str(path) and shipped.is_file():
            p = Path(str(shipped))
        else:
            raise UserError(f"parameter file {path} does not exist")
    tree = read_yaml_mapping(p, "parameter file")
    try:
        params = ParameterFile.model_validate(plain_value(tree, dates_as_text=True))
    except ValidationError as err:
        raise _user_error(err, tree, p) from None
    params._path = p
    params._lines = _line_map(tree)
    return params
