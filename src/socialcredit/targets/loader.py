"""Target files: published figures, each with the model quantity it is compared with.

A target file (YAML) lists figures as FACTS.md gives them — date, value, unit, source and
source tag — and says how to compute the same quantity from a run: a DuckDB ``query`` over
the run's tables (``daily`` always exists) returning one number, and a ``scale`` rule
(``people``: a count of simulated subjects, divided by the run's scale to stand for real
people; ``share``: a fraction, compared as it is). Queries may use ``$date`` (the figure's
date) and ``$start`` (the run's first reported day); a query used by several figures is
written once under ``queries`` and named. ``holdout: true`` marks a figure that calibration
must not fit (it is reported, out of sample). See docs/calibration.md.

Mistakes are :class:`~socialcredit.errors.UserError` sentences naming the file and line.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from socialcredit.errors import UserError

__all__ = ["Target", "TargetSet", "load_targets", "shipped_targets", "QUERY_PARAMETERS"]

#: The named parameters a query may use.
QUERY_PARAMETERS = ("date", "start")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_ID = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """One published figure and the model quantity it is compared with."""

    id: Annotated[str, Field(pattern=_ID)]
    figure: Annotated[str, Field(min_length=1)]
    #: figures of one series (the same quantity at several dates) share a series name
    series: Annotated[str, Field(pattern=_ID)]
    date: dt.date
    value: Annotated[float, Field(gt=0)]
    unit: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(min_length=1)]
    tag: Literal["P", "R", "S", "U", "P/R", "P/S", "R/S"]
    query: Annotated[str, Field(min_length=1)]
    scale: Literal["people", "share", "none"]
    holdout: bool = False
    tolerance: Annotated[float, Field(gt=0, lt=10)] | None = None
    weight: Annotated[float, Field(ge=0)] = 1.0
    note: str = ""


class TargetSet(_Strict):
    """A whole target file. Load one with :func:`load_targets`."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    description: str = ""
    #: the scenario the figures are meant for (a hint for users; any run can be validated)
    scenario: str | None = None
    #: a figure is within tolerance when |model / published - 1| <= tolerance
    tolerance: Annotated[float, Field(gt=0, lt=10)] = 0.2
    queries: dict[Annotated[str, Field(pattern=_ID)], str] = Field(default_factory=dict)
    targets: Annotated[list[Target], Field(min_length=1)]

    _path: Path | None = PrivateAttr(default=None)
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> TargetSet:
        seen: set[str] = set()
        for t in self.targets:
            if t.id in seen:
                raise ValueError(f"the target {t.id} appears twice")
            seen.add(t.id)
        return self

    @property
    def path(self) -> Path | None:
        return self._path

    def line_of(self, *loc: Any) -> int | None:
        from socialcredit.scenario import _line_for

        return _line_for(self._lines, tuple(loc)) if self._lines else None

    def sql(self, target: Target) -> str:
        """The query of ``target``, a named one resolved."""
        return self.queries.get(target.query, target.query)

    def tolerance_of(self, target: Target) -> float:
        return target.tolerance if target.tolerance is not None else self.tolerance

    @property
    def fitted(self) -> list[Target]:
        """The figures calibration fits (not held out)."""
        return [t for t in self.targets if not t.holdout]

    @property
    def held_out(self) -> list[Target]:
        return [t for t in self.targets if t.holdout]

    @property
    def last_date(self) -> dt.date:
        return max(t.date for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def shipped_targets() -> list[str]:
    """Names of the shipped target files."""
    folder = resources.files("socialcredit") / "targets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    p = Path(text).expanduser()
    if p.is_file():
        return p
    looks_like_path = p.suffix in (".yaml", ".yml") or "/" in text or "\\" in text
    if not looks_like_path:
        shipped = resources.files("socialcredit") / "targets" / f"{text}.yaml"
        if shipped.is_file():
            return Path(str(shipped))
        names = ", ".join(shipped_targets())
        raise UserError(f"unknown targets {text!r}; the shipped target files are {names}")
    raise UserError(f"target file {text} does not exist")


def load_targets(name_or_path: str | Path) -> TargetSet:
    """A target file by path, or a shipped one by name (``china``)."""
    from socialcredit.scenario import _line_map, _user_error, plain_value, read_yaml_mapping

    path = _resolve(name_or_path)
    tree = read_yaml_mapping(path, "target file")
    try:
        targets = TargetSet.model_validate(plain_value(tree))
    except ValidationError as err:
        raise _user_error(err, tree, path) from None
    targets._path = path
    targets._lines = _line_map(tree)
    for k, t in enumerate(targets.targets):
        sql = targets.sql(t)
        if t.query not in targets.queries and not re.search(r"\bselect\b", sql, re.I):
            names = ", ".join(sorted(targets.queries)) or "none"
            raise UserError(
                f"the target {t.id} names the query {t.query!r}, which is neither SQL nor one "
                f"of the file's queries ({names})",
                path=path, line=targets.line_of("targets", k, "query"))
        for name in _PARAM.findall(sql):
            if name not in QUERY_PARAMETERS:
                loc = ("queries", t.query) if t.query in targets.queries else ("targets", k, "query")
                raise UserError(
                    f"the query of {t.id} uses ${name}; a query may use "
                    + " and ".join(f"${p}" for p in QUERY_PARAMETERS),
                    path=path, line=targets.line_of(*loc))
    return targets


def query_parameters(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """The named parameters ``sql`` uses, with their values (DuckDB wants exactly those)."""
    used = dict.fromkeys(_PARAM.findall(sql))
    return {k: values[k] for k in used}
