"""Dated values: a number or a yes/no with the history of its changes.

Regulations change on known dates, and a run must follow them day by day (DESIGN 2.1), so
any numeric or boolean value in a policy may be written either as a plain value or as a
mapping from ISO dates to values::

    points: -5                               # always -5
    points: {2014-01-01: -5, 2021-01-01: -3} # -5 from 2014, -3 from 2021

The first value also holds before its first date (a history says when a value *changed*;
to say that a rule did not exist yet, give the rule a ``from`` date). Dates must be real
calendar dates written ``YYYY-MM-DD`` and strictly increasing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar, get_args

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

T = TypeVar("T")
U = TypeVar("U")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text: Any) -> dt.date:
    """An ISO date ``YYYY-MM-DD`` that exists in the calendar, or a pydantic error."""
    if isinstance(text, dt.date) and not isinstance(text, dt.datetime):
        return text
    if not isinstance(text, str) or not _DATE.match(text):
        raise PydanticCustomError(
            "bad_date", "'{value}' is not a date written YYYY-MM-DD", {"value": str(text)}
        )
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError(
            "bad_date", "'{value}' is not a real calendar date", {"value": text}
        ) from None


def _date_schema() -> core_schema.CoreSchema:
    return core_schema.no_info_plain_validator_function(
        parse_date, serialization=core_schema.plain_serializer_function_ser_schema(str)
    )


class Dated(Generic[T]):
    """A value and its history: ``changes[i] = (date, value)`` in increasing date order.

    The first entry's date is ``None`` for a plain (undated) value. ``at(day)`` is the value
    in force on ``day``; the first value also holds before the first date. Immutable.
    (A plain class rather than a dataclass, so pydantic uses the schema defined below.)
    """

    __slots__ = ("changes",)
    changes: tuple[tuple[dt.date | None, T], ...]

    def __init__(self, changes: tuple[tuple[dt.date | None, T], ...]) -> None:
        object.__setattr__(self, "changes", tuple(changes))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Dated values are immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dated) and self.changes == other.changes

    def __hash__(self) -> int:
        return hash(self.changes)

    def __repr__(self) -> str:
        return f"Dated({self.describe()})"

    @classmethod
    def always(cls, value: T) -> Dated[T]:
        """A value that never changes."""
        return cls(((None, value),))

    @property
    def is_constant(self) -> bool:
        """True when the value never changes."""
        return len({repr(v) for _, v in self.changes}) == 1

    @property
    def first(self) -> T:
        """The earliest value."""
        return self.changes[0][1]

    def at(self, day: dt.date) -> T:
        """The value in force on ``day``."""
        value = self.changes[0][1]
        for start, v in self.changes:
            if start is None or start <= day:
                value = v
            else:
                break
        return value

    def dates(self) -> list[dt.date]:
        """The dates on which the value changes (the first date included)."""
        return [d for d, _ in self.changes if d is not None]

    def values(self) -> list[T]:
        """Every value the history takes."""
        return [v for _, v in self.changes]

    def map(self, fn: Callable[[T], U]) -> Dated[U]:
        """The same history with each value transformed."""
        return Dated(tuple((d, fn(v)) for d, v in self.changes))

    def describe(self, fmt: Callable[[T], str] = str) -> str:
        """``-5`` or ``-5 from 2014-01-01; -3 from 2021-01-01``, for people."""
        if self.changes[0][0] is None and len(self.changes) == 1:
            return fmt(self.changes[0][1])
        return "; ".join(
            f"{fmt(v)} from {d.isoformat()}" if d is not None else fmt(v) for d, v in self.changes
        )

    def to_plain(self) -> Any:
        """The YAML form: the plain value, or a mapping from ISO dates to values."""
        if len(self.changes) == 1 and self.changes[0][0] is None:
            return self.changes[0][1]
        return {(d.isoformat() if d else "always"): v for d, v in self.changes}

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        args = get_args(source)
        inner = handler.generate_schema(args[0] if args else Any)
        history = core_schema.dict_schema(
            keys_schema=_date_schema(), values_schema=inner, min_length=1
        )
        tagged = core_schema.tagged_union_schema(
            {"value": inner, "dated": history},
            discriminator=lambda v: "dated" if isinstance(v, dict) else "value",
        )
        return core_schema.no_info_after_validator_function(
            _build,
            tagged,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda d: d.to_plain() if isinstance(d, Dated) else d
            ),
        )


def _build(value: Any) -> Dated[Any]:
    if isinstance(value, Dated):
        return value
    if not isinstance(value, dict):
        return Dated.always(value)
    items = list(value.items())
    for (d0, _), (d1, _) in zip(items, items[1:], strict=False):
        if d1 <= d0:
            raise PydanticCustomError(
                "bad_date_order",
                "the dates of a history must increase, but {d1} comes after {d0}",
                {"d0": d0.isoformat(), "d1": d1.isoformat()},
            )
    return Dated(tuple(items))


def dated_value(value: Any) -> Dated[Any]:
    """``value`` as a :class:`Dated` (plain values become constant histories)."""
    return value if isinstance(value, Dated) else Dated.always(value)
