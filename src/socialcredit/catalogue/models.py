"""The catalogue's schema: acts, channels, services and regions, each with a reference.

The catalogue says what can happen (acts), how the system learns of it (channels), what
subjects ask for (services) and where they live (regions). It is data, kept apart from any
policy, so that the same behaviour can be judged under different rules (DESIGN 2.3, 2.4, 2.7).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from socialcredit.catalogue.yamlsource import Node

#: Subject kinds in table order (``K`` axis of the policy tables).
KINDS: tuple[str, str] = ("citizen", "business")
KIND_CITIZEN = 0
KIND_BUSINESS = 1

#: Band axes and their number of bands, per subject kind. Fixed conventions shared with
#: the population and the kernel: band 0 of ``age`` is children (< 18); ``urban`` is 0 rural,
#: 1 urban; ``size`` is micro, small, medium, large.
CITIZEN_BANDS: dict[str, int] = {"income": 4, "education": 4, "age": 4, "urban": 2}
BUSINESS_BANDS: dict[str, int] = {"size": 4}
BANDS: dict[str, dict[str, int]] = {"citizen": CITIZEN_BANDS, "business": BUSINESS_BANDS}

#: Absolute limits that come from bit widths in the kernel's state.
MAX_ACTS = 120
MAX_CHANNELS = 31
MAX_SERVICES = 31
MAX_DELAY_DAYS = 1023

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]
Kind = Literal["citizen", "business"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(ge=0.0)]
Modifiers = dict[str, list[Annotated[float, Field(ge=0.0)]]]


def _check_modifiers(mods: Modifiers, kind: str, what: str) -> Modifiers:
    allowed = BANDS[kind]
    for axis, values in mods.items():
        if axis not in allowed:
            raise ValueError(
                f"{what} modifiers by '{axis}' make no sense for a {kind}; "
                f"use {', '.join(sorted(allowed))}"
            )
        if len(values) != allowed[axis]:
            raise ValueError(f"'{axis}' modifiers need {allowed[axis]} values, not {len(values)}")
    return mods


class Act(Node):
    """A kind of thing a subject does; the truth, whether or not anyone records it."""

    id: Id
    kind: Kind
    category: Id
    valence: Literal["penalised", "rewarded", "neutral"]
    rate_per_year: Rate
    obligation: bool = False
    #: the share of the act's obligations met on the day (a fine paid in time, a late bill
    #: settled with the next one); the rest stay open until met at the repayment hazard
    met_at_once: Probability = 0.0
    channels: list[Id] = Field(min_length=1)
    modifiers: Modifiers = Field(default_factory=dict)
    reference: str = Field(min_length=1)
    note: str | None = None

    @model_validator(mode="after")
    def _modifiers_fit_kind(self) -> Act:
        _check_modifiers(self.modifiers, self.kind, "act")
        return self

    @model_validator(mode="after")
    def _met_at_once_needs_an_obligation(self) -> Act:
        if self.met_at_once > 0 and not self.obligation:
            raise ValueError("met_at_once is the share of an obligation met at once, "
                             "and this act creates no obligation")
        return self

    @property
    def kind_index(self) -> int:
        """0 for citizens, 1 for businesses."""
        return KINDS.index(self.kind)


class Channel(Node):
    """A way the system learns of acts: coverage, false records, misidentification, delay."""

    id: Id
    name: str
    coverage: Probability
    false_per_year: Rate = 0.0
    misid_per_year: Rate = 0.0
    false_acts: list[Id] = Field(default_factory=list)
    delay_days: Annotated[int, Field(ge=0, le=MAX_DELAY_DAYS)] = 0
    misid_modifiers: Modifiers = Field(default_factory=dict)
    reference: str = Field(min_length=1)
    note: str | None = None

    @field_validator("misid_modifiers")
    @classmethod
    def _misid_bands(cls, mods: Modifiers) -> Modifiers:
        # Misidentification is drawn on the citizen wrongly named (DESIGN 2.4).
        return _check_modifiers(mods, "citizen", "misidentification")

    @model_validator(mode="after")
    def _false_records_name_acts(self) -> Channel:
        if (self.false_per_year > 0 or self.misid_per_year > 0) and not self.false_acts:
            raise ValueError("a channel that makes false records must list its 'false_acts'")
        return self


class Service(Node):
    """Something a subject asks for and an agency decides: a flight, a loan, a school place."""

    id: Id
    name: str
    kind: Kind
    requests_per_year: Rate
    months: list[Annotated[int, Field(ge=1, le=12)]] = Field(
        default_factory=lambda: list(range(1, 13)), min_length=1
    )
    retry: Probability = 0.0
    ages: list[Annotated[int, Field(ge=0, le=3)]] = Field(default_factory=lambda: [1, 2, 3])
    modifiers: Modifiers = Field(default_factory=dict)
    reference: str = Field(min_length=1)
    note: str | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> Service:
        _check_modifiers(self.modifiers, self.kind, "service")
        if len(set(self.months)) != len(self.months):
            raise ValueError("'months' lists a month twice")
        return self


class Region(Node):
    """A provincial-level region, a pilot city or the synthetic control region."""

    id: Id
    name: str
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
    level: Literal["province", "city", "synthetic"]
    parent: Id | None = None
    population: Annotated[int, Field(gt=0)]
    reference: str = Field(min_length=1)
    note: str | None = None


class ActsFile(Node):
    acts: list[Act] = Field(min_length=1)


class ChannelsFile(Node):
    channels: list[Channel] = Field(min_length=1)


class ServicesFile(Node):
    services: list[Service] = Field(min_length=1)


class RegionsFile(Node):
    regions: list[Region] = Field(min_length=1)
