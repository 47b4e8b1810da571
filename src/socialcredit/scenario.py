"""Scenarios: who is simulated, where, when, under which policy, behaving how.

A scenario is a YAML document (shipped ones live in ``socialcredit/scenarios/``) validated by
the pydantic models below. Loading goes through ruamel.yaml so that every mistake is reported
as one plain sentence naming the file and the line.

Region ``citizens`` is the number of *simulated* citizens (a multiple of 8, the household
block length). ``population`` optionally says how many real people the region stands for;
``scale`` is simulated citizens per real person (``china`` lists census populations and a
scale of about 1e6 / 1.41e9, so its regions' citizens are derived from the population).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from socialcredit.errors import UserError
from socialcredit.policy.dated import Dated

HOUSEHOLD_BLOCK = 8

# Limits of scenario values. Each comes from what the model can represent, not from taste:
#: every simulated day, burn-in included, lies in [FIRST_DAY, LAST_DAY] (days count from
#: 1970 in the kernel's unsigned day keys; the policies' dated histories end well before 2100)
FIRST_DAY = dt.date(1970, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)
#: seeds are 63-bit, so that every replicate's seed and every shard's key stay in an int64
MAX_SEED = 2**63 - 1
#: a rate per year of one subject: at most one a day
MAX_PER_YEAR = 365.0
#: a band modifier of a rate: the product of modifiers is capped at 8 (DESIGN 2.3), so a
#: single modifier above 8 means nothing
MAX_MODIFIER = 8.0
#: any other factor (surveillance density, compliance, uptake): the kernel's fixed-point
#: arithmetic multiplies 32-bit thresholds by it
MAX_FACTOR = 100.0
#: a channel's delay: the kernel keeps delayed records' due days in 10 bits
MAX_DELAY_DAYS = 1023

Share = Annotated[float, Field(ge=0.0, le=1.0)]
#: Band axes a modifier can depend on, with their number of bands (as in the catalogue).
MODIFIER_AXES = {"income": 4, "education": 4, "age": 4, "urban": 2, "size": 4}
Multiplier = Annotated[float, Field(ge=0.0, le=MAX_FACTOR)]
PerYear = Annotated[float, Field(ge=0.0, le=MAX_PER_YEAR)]
Modifier = Annotated[float, Field(ge=0.0, le=MAX_MODIFIER)]

# Defaults of the optional region fields. None of them has a primary source; each is an
# assumption, listed in docs/population.md and overridable per region.
DEFAULT_INCOME_SHARING = 0.6  # assumption: chance an adult shares the household income draw
DEFAULT_EDUCATION_LINK = 0.4  # assumption: chance education reuses the income draw
DEFAULT_EMPLOYMENT = [0.0, 0.55, 0.5, 0.05]  # assumption: employed by a business, by age band
# assumption: micro/small/medium/large; MIIT counts SMEs as over 99 % of firms
DEFAULT_SIZE_SHARES = [0.82, 0.14, 0.03, 0.01]
# assumption: rough shares of enterprises by sector, after the 2018 economic census
DEFAULT_SECTOR_SHARES = [
    0.03, 0.005, 0.14, 0.01, 0.06, 0.30, 0.04, 0.04,
    0.06, 0.01, 0.04, 0.12, 0.07, 0.03, 0.015, 0.03,
]  # fmt: skip


class _Model(BaseModel):
    # strict: ``seed: "42"`` or ``days: true`` is a mistake, not a number; NaN and infinity
    # are never a share, a rate or a factor
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _check_shares(v: list[float], n: int) -> list[float]:
    if len(v) != n:
        raise ValueError(f"needs {n} shares, not {len(v)}")
    if any(x < 0 for x in v):
        raise ValueError("shares cannot be negative")
    total = math.fsum(v)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"shares must sum to 1, these sum to {total:g}")
    return v


def _check_len(v: list[float], n: int) -> list[float]:
    if len(v) != n:
        raise ValueError(f"needs {n} values, not {len(v)}")
    if any(x < 0 for x in v):
        raise ValueError("values cannot be negative")
    return v


class Region(_Model):
    """One region: its simulated citizens, their demography, surveillance and policy extension."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    citizens: Annotated[int, Field(ge=HOUSEHOLD_BLOCK)]
    population: Annotated[int, Field(ge=1)] | None = None
    admin_code: Annotated[int, Field(ge=0, le=999999)] | None = None
    businesses_per_1000: Annotated[float, Field(ge=0.0, le=1000.0)]
    extension: str | None = None
    urban_share: Share
    income_shares: list[float]
    education_shares: list[float]
    age_shares: list[float]
    consent_share: Share
    household_mean: Annotated[float, Field(ge=1.0, le=6.0)]
    surveillance: dict[str, Multiplier] = Field(default_factory=dict)
    household_income_sharing: Share = DEFAULT_INCOME_SHARING
    education_income_link: Share = DEFAULT_EDUCATION_LINK
    employment_shares: list[float] = Field(default_factory=lambda: list(DEFAULT_EMPLOYMENT))
    business_size_shares: list[float] = Field(default_factory=lambda: list(DEFAULT_SIZE_SHARES))
    sector_shares: list[float] = Field(default_factory=lambda: list(DEFAULT_SECTOR_SHARES))

    @field_validator("citizens")
    @classmethod
    def _multiple_of_block(cls, v: int) -> int:
        if v % HOUSEHOLD_BLOCK:
            lo = v - v % HOUSEHOLD_BLOCK
            raise ValueError(
                f"citizens must be a multiple of {HOUSEHOLD_BLOCK} (households are cut in "
                f"blocks of {HOUSEHOLD_BLOCK}); {lo} or {lo + HOUSEHOLD_BLOCK} would do"
            )
        return v

    @field_validator("income_shares", "education_shares", "age_shares", "business_size_shares")
    @classmethod
    def _four_shares(cls, v: list[float]) -> list[float]:
        return _check_shares(v, 4)

    @field_validator("sector_shares")
    @classmethod
    def _sixteen_shares(cls, v: list[float]) -> list[float]:
        return _check_shares(v, 16)

    @field_validator("employment_shares")
    @classmethod
    def _employment(cls, v: list[float]) -> list[float]:
        _check_len(v, 4)
        if any(x > 1 for x in v):
            raise ValueError("employment shares cannot exceed 1")
        return v

    @model_validator(mode="after")
    def _children_need_adults(self) -> Region:
        # every household's first member is an adult, so children can only be among the
        # other members: at most 1 - 1/household_mean of the citizens
        room = 1.0 - 1.0 / self.household_mean
        if self.age_shares[0] > room * 0.98:
            raise ValueError(
                f"a child share of {self.age_shares[0]:g} needs larger households than "
                f"{self.household_mean:g} members on average, since every household has an adult"
            )
        if self.age_shares[0] == 1.0:
            raise ValueError("a region needs adults")
        return self

    @property
    def people(self) -> float:
        """How many real people the region stands for."""
        return float(self.population) if self.population is not None else float(self.citizens)


class ActBehaviour(_Model):
    """Overrides of one act's behaviour in the catalogue (None keeps the catalogue's value).

    ``modifiers`` multiply the act's rate by band, as in the catalogue: ``income``,
    ``education`` and ``age`` (four values, band 0 first) and ``urban`` (rural, urban) for
    citizens, ``size`` (micro … large) for businesses. A modifier given here replaces the
    catalogue's modifier of the same band axis; the others stay.

    ``rate_per_year`` may be dated, like a policy value (docs/policy-language.md, section 2):
    ``{2013-10-01: 0.002, 2016-01-01: 0.004}``. That is how a real mechanism that changed over
    time enters a scenario (DESIGN 2.2: the courts' enforcement capacity is a dated rate, not
    feedback from aggregates). The kernel applies a history as its largest value times a
    factor per epoch in steps of 1/256 of that value.

    ``met_at_once`` replaces the catalogue's share of the act's obligations met on the day
    (the rest stay open until met at ``repayment_per_year``)."""

    rate_per_year: Dated[PerYear] | None = None
    met_at_once: Share | None = None
    modifiers: dict[str, list[Modifier]] = Field(default_factory=dict)

    @field_validator("modifiers")
    @classmethod
    def _axes(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for axis, values in v.items():
            n = MODIFIER_AXES.get(axis)
            if n is None:
                raise ValueError(
                    f"modifiers by {axis!r} are unknown; use {', '.join(sorted(MODIFIER_AXES))}"
                )
            _check_len(values, n)
        return v


class ChannelBehaviour(_Model):
    """Overrides of one channel: coverage, false records, misidentifications, delay."""

    coverage: Share | None = None
    false_per_year: PerYear | None = None
    misid_per_year: PerYear | None = None
    delay_days: Annotated[int, Field(ge=0, le=MAX_DELAY_DAYS)] | None = None


class ServiceBehaviour(_Model):
    """Overrides of one service: how often subjects ask, how often they retry after a denial,
    and how demand for it moved over the years.

    ``demand`` multiplies ``requests_per_year`` and may be dated, like a policy value: an
    index of how much the service was used, e.g. a published series of passengers relative
    to a base year (``{2014-01-01: 0.80, 2016-01-01: 1.0, 2018-01-01: 1.25}``). It is how a
    change in everyone's behaviour that no policy caused enters a scenario (DESIGN 2.2), and
    it keeps ``requests_per_year`` one level that calibration can fit."""

    requests_per_year: PerYear | None = None
    retry: Share | None = None
    demand: Multiplier | Dated[Multiplier] = 1.0


class Objection(_Model):
    """The chance a subject objects to a record: a base chance times band multipliers."""

    base: Share = 0.05
    education: list[Modifier] = Field(default_factory=lambda: [0.5, 0.8, 1.2, 1.8])
    income: list[Modifier] = Field(default_factory=lambda: [0.7, 0.9, 1.1, 1.3])

    @field_validator("education", "income")
    @classmethod
    def _four(cls, v: list[float]) -> list[float]:
        return _check_len(v, 4)


class Behaviour(_Model):
    """How subjects behave: overrides of the catalogue plus the scenario-wide parameters.

    None of the scenario-wide defaults below has a published source except ``awareness``;
    each is an assumption, overridable in the scenario file."""

    acts: dict[str, ActBehaviour] = Field(default_factory=dict)
    channels: dict[str, ChannelBehaviour] = Field(default_factory=dict)
    services: dict[str, ServiceBehaviour] = Field(default_factory=dict)
    #: hazard per year of meeting an open obligation (a debt, a fine, unpaid fees)
    repayment_per_year: PerYear = 0.5
    #: compliance under pressure: how much faster a listed debtor meets its obligations
    compliance_factor: Multiplier = 3.0
    objection: Objection = Field(default_factory=Objection)
    #: share of listed subjects who know it (FACTS.md: 11 % knew of their pilot [R]); may be
    #: dated, as knowledge of a list grows with its publicity
    awareness: Share | Dated[Share] = 0.11
    #: how much an aware listed subject's service requests are multiplied by
    listed_request_factor: Share = 0.5
    #: deterrence: a penalised act's rate falls by this share times the channel's coverage
    deterrence_strength: Share = 0.5
    #: chilling: speech acts fall by this share times coverage, on top of deterrence
    chilling_strength: Share = 0.6
    #: uptake: a rewarded act's rate rises by this share
    uptake_strength: Multiplier = 0.3
    #: a listed subject's penalised acts are multiplied by this (with deterrence on)
    listed_act_factor: Multiplier = 0.8


class Feedback(_Model):
    """Feedback loops (DESIGN 2.8); all false is the open-loop model."""

    deterrence: bool = False
    chilling: bool = False
    uptake: bool = False
    economic: bool = False
    compliance: bool = False


class Recording(_Model):
    """What the recorder keeps beyond the daily aggregates."""

    snapshot_every_days: Annotated[int, Field(ge=0)] = 30  # 0: no snapshots
    # the subjects table (every subject's demographics, one row each); off only for runs so
    # large that writing a row per subject would cost more than the run itself
    subjects: bool = True


class Scenario(_Model):
    """A whole scenario. Load one with :meth:`Scenario.load`."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    start: Annotated[dt.date, Field(strict=False)]  # a date, or its ISO text (from JSON)
    days: Annotated[int, Field(gt=0)]
    burn_in_days: Annotated[int, Field(ge=0)] = 0
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)]
    policy: Annotated[str, Field(min_length=1)]
    reforms: list[str] = Field(default_factory=list)
    regions: Annotated[list[Region], Field(min_length=1, max_length=255)]
    behaviour: Behaviour = Field(default_factory=Behaviour)
    feedback: Feedback = Field(default_factory=Feedback)
    recording: Recording = Field(default_factory=Recording)
    scale: Annotated[float, Field(gt=0.0)] = 1.0
    assumptions: list[str] = Field(default_factory=list)
    #: where the values of an overlay came from (calibration: targets, trials, loss, date)
    provenance: dict[str, Any] | None = None

    _path: Path | None = PrivateAttr(default=None)
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _derive_citizens(cls, data: Any) -> Any:
        # Regions may give only ``population`` (real people); their simulated citizens are
        # then the populations times ``scale``, apportioned in whole blocks of 8.
        if not isinstance(data, Mapping) or not isinstance(data.get("regions"), list):
            return data
        regions = data["regions"]
        if not all(isinstance(r, Mapping) for r in regions):
            return data
        missing = [r for r in regions if "citizens" not in r]
        if not missing:
            return data
        if any(not isinstance(r.get("population"), int) or r["population"] < 1 for r in missing):
            return data  # field validation reports the missing citizens or bad population
        scale = data.get("scale", 1.0)
        if not isinstance(scale, int | float) or scale <= 0:
            return data
        if len(missing) != len(regions):
            raise ValueError("either every region gives citizens or none does (then population)")
        pops = [int(r["population"]) for r in regions]
        counts = apportion(round(math.fsum(pops) * scale), pops)
        return {
            **data,
            "regions": [{**r, "citizens": c} for r, c in zip(regions, counts, strict=True)],
        }

    # the calendar, field by field so that each problem is reported at its own line
    @field_validator("start")
    @classmethod
    def _start_in_range(cls, v: dt.date) -> dt.date:
        problem = calendar_problem(v, 0, 1)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("days")
    @classmethod
    def _days_fit(cls, v: int, info: ValidationInfo) -> int:
        start = info.data.get("start")
        problem = calendar_problem(start, 0, v) if start is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("burn_in_days")
    @classmethod
    def _burn_in_fits(cls, v: int, info: ValidationInfo) -> int:
        start = info.data.get("start")
        problem = calendar_problem(start, v, 1) if start is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _unique_regions(self) -> Scenario:
        seen: set[str] = set()
        for r in self.regions:
            if r.id in seen:
                raise ValueError(f"region {r.id} appears twice")
            seen.add(r.id)
        return self

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, name_or_path: str | Path) -> Scenario:
        """A shipped scenario by name (``default``, ``unified``, ``china``) or a YAML file."""
        path = _resolve(name_or_path)
        tree = read_yaml_mapping(path)
        if "overlay" in tree:
            return _load_overlay(cls, path, tree)
        try:
            scenario = cls.model_validate(plain_value(tree))
        except ValidationError as err:
            raise _user_error(err, tree, path) from None
        scenario._path = path
        scenario._lines = _line_map(tree)
        return scenario

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str | Path | None = None) -> Scenario:
        """A scenario from a mapping (errors name ``path`` when given, without lines)."""
        try:
            scenario = cls.model_validate(dict(data))
        except ValidationError as err:
            raise _user_error(err, None, Path(path) if path else None) from None
        scenario._path = Path(path) if path else None
        return scenario

    @staticmethod
    def shipped() -> list[str]:
        """Names of the shipped scenarios."""
        folder = resources.files("socialcredit") / "scenarios"
        return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))

    @property
    def path(self) -> Path | None:
        """The file the scenario was loaded from (to resolve relative policy paths)."""
        return self._path

    def line_of(self, *loc: Any) -> int | None:
        """The line of a key in the source file, e.g. ``line_of("regions", 0, "id")``."""
        return self._lines.get(tuple(loc))

    def check_options(self, *, seed: int | None = None, days: int | None = None) -> None:
        """Check ``--seed`` and ``--days`` by the same limits as the file's own values; a
        :class:`UserError` names the option."""
        if seed is not None and not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
            raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED}, not {seed}")
        if days is not None:
            if not isinstance(days, int) or days <= 0:
                raise UserError(f"--days must be a positive number, not {days}")
            problem = calendar_problem(self.start, self.burn_in_days, days)
            if problem:
                raise UserError(f"--days {days} is too many: {problem}")

    # --- derived values --------------------------------------------------------------------

    @property
    def citizens(self) -> int:
        """Simulated citizens in all regions."""
        return sum(r.citizens for r in self.regions)

    @property
    def region_ids(self) -> list[str]:
        return [r.id for r in self.regions]

    def region(self, region_id: str) -> Region:
        for r in self.regions:
            if r.id == region_id:
                return r
        raise UserError(f"scenario {self.name} has no region {region_id}")

    def behaviour_dates(self) -> list[dt.date]:
        """The dates on which a dated behaviour value changes (the policy's epochs are cut
        there too, so the kernel's tables can follow them)."""
        out: set[dt.date] = set()
        for act in self.behaviour.acts.values():
            if act.rate_per_year is not None:
                out.update(act.rate_per_year.dates())
        for svc in self.behaviour.services.values():
            if hasattr(svc.demand, "dates"):
                out.update(svc.demand.dates())
        aware = self.behaviour.awareness
        if hasattr(aware, "dates"):
            out.update(aware.dates())
        return sorted(out)

    @property
    def start_with_burn_in(self) -> dt.date:
        """The first simulated day (burn-in included)."""
        return self.start - dt.timedelta(days=self.burn_in_days)

    @property
    def end(self) -> dt.date:
        """The last reported day."""
        return self.start + dt.timedelta(days=self.days - 1)

    # --- the burn-in reported ----------------------------------------------------------------

    def burn_in_reported(self, days: int | None = None) -> Scenario:
        """The same simulation with its burn-in days reported: it starts on the burn-in's
        first day, with no burn-in, for the burn-in plus ``days`` (default: the scenario's)
        days. Draws are keyed by the calendar date and policies by their dates, so every day
        is simulated exactly as in the scenario itself (``run --report-burn-in``)."""
        burn = int(self.burn_in_days)
        n = int(self.days if days is None else days)
        return self.model_copy(update={"start": self.start - dt.timedelta(days=burn),
                                       "burn_in_days": 0, "days": burn + n})

    # --- rescaling ---------------------------------------------------------------------------

    def rescaled(self, citizens: int) -> Scenario:
        """The same scenario with ``citizens`` simulated citizens in all, shared out in
        proportion to the regions' people, every region at least 8 and a multiple of 8.

        ``citizens`` is rounded to a multiple of 8; ``scale`` follows, so each simulated citizen
        keeps standing for the right number of real people."""
        if citizens < HOUSEHOLD_BLOCK * len(self.regions):
            raise UserError(
                f"{citizens} citizens are too few for {len(self.regions)} regions; "
                f"each region needs at least {HOUSEHOLD_BLOCK}"
            )
        people = [self._people(r) for r in self.regions]
        total = math.fsum(people)
        counts = apportion(citizens, people)
        return self._with_counts(counts, sum(counts) / total, people)

    def with_scale(self, scale: float) -> Scenario:
        """The same scenario with each simulated citizen standing for ``1/scale`` people."""
        if not scale > 0:
            raise UserError(f"scale must be positive, not {scale}")
        people = [self._people(r) for r in self.regions]
        target = max(HOUSEHOLD_BLOCK * len(self.regions), round(math.fsum(people) * scale))
        return self._with_counts(apportion(target, people), scale, people)

    def _people(self, r: Region) -> float:
        return float(r.population) if r.population is not None else r.citizens / self.scale

    def _with_counts(self, counts: list[int], scale: float, people: list[float]) -> Scenario:
        regions = [
            r.model_copy(update={"citizens": c, "population": round(p)})
            for r, c, p in zip(self.regions, counts, people, strict=True)
        ]
        out = self.model_copy(update={"regions": regions, "scale": scale})
        out._path = self._path
        out._lines = self._lines
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the run manifest)."""
        return self.model_dump(mode="json")


def calendar_problem(start: dt.date, burn_in_days: int, days: int) -> str | None:
    """Why a run from ``start`` (after a burn-in) for ``days`` does not fit the calendar the
    model can represent, or None when it does."""
    if start < FIRST_DAY or start > LAST_DAY:
        return f"the start {start} is outside {FIRST_DAY} … {LAST_DAY}, the years a run can cover"
    room_before = (start - FIRST_DAY).days
    if burn_in_days > room_before:
        return (f"a burn-in of {burn_in_days} days before {start} would begin before "
                f"{FIRST_DAY}; at most {room_before} days fit")
    room_after = (LAST_DAY - start).days + 1
    if days > room_after:
        return (f"{days} days from {start} would end after {LAST_DAY}; at most {room_after} "
                "days fit")
    return None


# --- overlays --------------------------------------------------------------------------------

#: The keys of an overlay file.
OVERLAY_KEYS = ("overlay", "description", "set", "provenance")


def _load_overlay(cls: type[Scenario], path: Path, tree: Any) -> Scenario:
    """A scenario overlay: a base scenario with some values set, and where they came from::

        overlay: china                     # the base: a shipped name, or a path (relative
                                           # to the overlay's folder first)
        set:                               # dotted paths of values the base already has
          behaviour.repayment_per_year: 0.31
          behaviour.acts.court_default.rate_per_year.2014-01-01: 0.0031
        provenance: {method: optuna TPE, targets: china, trials: 40, loss: 0.02}

    ``socialcredit calibrate`` writes one; ``run`` accepts it like any scenario file. Only
    values the base gives can be set, so an overlay cannot add what the base does not have."""
    lines = _line_map(tree)

    def fail(message: str, *loc: Any) -> UserError:
        return UserError(message, path=path, line=_line_for(lines, loc))

    for key in tree:
        if str(key) not in OVERLAY_KEYS:
            raise fail(f"unknown key {str(key)!r} in an overlay; an overlay has "
                       + ", ".join(OVERLAY_KEYS), str(key))
    ref = tree.get("overlay")
    if not isinstance(ref, str) or not ref:
        raise fail("overlay must name the scenario it changes", "overlay")
    local = path.parent / ref
    base_ref: str | Path = local if local.suffix in (".yaml", ".yml") and local.is_file() else ref
    if Path(str(base_ref)).resolve() == path.resolve():
        raise fail("an overlay cannot change itself", "overlay")
    try:
        base = cls.load(base_ref)
    except UserError as err:
        if err.path is not None:
            raise
        raise fail(err.message, "overlay") from None
    data = base.to_dict()
    values = tree.get("set") or {}
    if not isinstance(values, Mapping):
        raise fail("set must map dotted paths to values", "set")
    for key, value in values.items():
        try:
            set_path(data, str(key), plain_value(value, dates_as_text=True))
        except KeyError as err:
            raise fail(f"{key} is not a value of the scenario {base.name} ({err.args[0]})",
                       "set", str(key)) from None
    provenance = tree.get("provenance")
    if provenance is not None and not isinstance(provenance, Mapping):
        raise fail("provenance must be a mapping", "provenance")
    if provenance is not None:
        data["provenance"] = plain_value(provenance, dates_as_text=True)
    if tree.get("description"):
        data["description"] = str(tree["description"])
    try:
        scenario = cls.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = _where(tuple(first.get("loc", ())))
        key = next((str(k) for k in values if where and where.startswith(str(k))), None)
        sentence = _user_error(err, None, None).message
        raise fail(f"the overlay makes the scenario invalid: {sentence}",
                   *(("set", key) if key else ("set",))) from None
    scenario._path = base.path
    scenario._lines = {}
    return scenario


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (``behaviour.awareness``, ``regions.beijing.consent_share``,
    ``behaviour.acts.court_default.rate_per_year.2014-01-01``) in a scenario mapping. Every
    part must exist already (a list is indexed by its items' ``id`` or by position); a
    :class:`KeyError` names the first part that does not."""
    node: Any = data
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            idx = next((j for j, x in enumerate(node)
                        if isinstance(x, Mapping) and x.get("id") == part), None)
            if idx is None and part.isdigit() and int(part) < len(node):
                idx = int(part)
            if idx is None:
                raise KeyError(f"no item {part}")
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if part not in node:
                raise KeyError(f"no {part} in {'.'.join(parts[:i]) or 'the scenario'}")
            if last:
                if isinstance(node[part], dict | list):
                    raise KeyError(f"{part} is not a single value")
                node[part] = value
            else:
                node = node[part]
        else:
            raise KeyError(f"{'.'.join(parts[:i])} is a single value")


def get_path(data: dict[str, Any], key: str) -> Any:
    """The value at ``key`` in a scenario mapping (as :func:`set_path` finds it)."""
    node: Any = data
    for part in key.split("."):
        if isinstance(node, list):
            found = [x for x in node if isinstance(x, Mapping) and x.get("id") == part]
            if found:
                node = found[0]
            elif part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise KeyError(f"no item {part}")
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(f"no {part}")
    return node


def apportion(total: int, weights: Iterable[float]) -> list[int]:
    """Share ``total`` (rounded to a multiple of 8) among weights in whole blocks of 8, each at
    least one block, by largest remainder. Exact when the weights already are such counts."""
    w = [float(x) for x in weights]
    n = len(w)
    units = max(n, int(round(total / HOUSEHOLD_BLOCK)))
    wsum = math.fsum(w)
    if wsum <= 0:
        raise UserError("regions must have a positive number of people to rescale")
    quotas = [units * x / wsum for x in w]
    base = [max(1, math.floor(q + 1e-9)) for q in quotas]
    rema = [q - math.floor(q + 1e-9) for q in quotas]
    left = units - sum(base)
    order = sorted(range(n), key=lambda k: (-rema[k], k))
    k = 0
    while left > 0:
        base[order[k % n]] += 1
        left -= 1
        k += 1
    # the minimum of one block can overshoot: take back from the largest regions
    while left < 0:
        j = max(range(n), key=lambda k: (base[k], -k))
        base[j] -= 1
        left += 1
    return [b * HOUSEHOLD_BLOCK for b in base]


def validate_against_catalogue(scenario: Scenario, catalogue: Any) -> None:
    """Check the scenario against the catalogue: region ids (and administrative codes),
    surveillance channels, and the ids and modifier axes of behaviour overrides.

    Raises :class:`UserError` naming the scenario file and the line of the first problem.
    ``catalogue`` is a :class:`socialcredit.catalogue.Catalogue`; any object whose
    ``regions``, ``channels``, ``acts`` and ``services`` are lists of objects with an ``id``
    (or mappings by id) will do, and a missing collection is not checked."""
    regions = _by_id(getattr(catalogue, "regions", None))
    channels = _by_id(getattr(catalogue, "channels", None))
    acts = _by_id(getattr(catalogue, "acts", None))
    services = _by_id(getattr(catalogue, "services", None))

    def fail(message: str, *loc: Any) -> None:
        raise UserError(message, path=scenario.path, line=scenario.line_of(*loc))

    def unknown(what: str, ident: str, known: dict[str, Any], *loc: Any) -> None:
        from socialcredit.catalogue.yamlsource import did_you_mean

        hint = did_you_mean(ident, known)
        if not hint:
            names = sorted(known)
            hint = "; the catalogue has " + ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
        fail(f"unknown {what} {ident!r}{hint}", *loc)

    for k, r in enumerate(scenario.regions):
        if regions is not None:
            if r.id not in regions:
                unknown("region", r.id, regions, "regions", k, "id")
            code = getattr(regions[r.id], "code", None)
            if r.admin_code is not None and code is not None and str(code).isdigit():
                if int(code) != r.admin_code:
                    fail(
                        f"region {r.id} has admin_code {r.admin_code:06d} but the catalogue "
                        f"says {code}",
                        "regions",
                        k,
                        "admin_code",
                    )
        if channels is not None:
            for ch in r.surveillance:
                if ch not in channels:
                    unknown("channel", ch, channels, "regions", k, "surveillance", ch)
    b = scenario.behaviour
    if acts is not None:
        for ident, over in b.acts.items():
            if ident not in acts:
                unknown("act", ident, acts, "behaviour", "acts", ident)
            if over.met_at_once and not getattr(acts[ident], "obligation", True):
                fail(f"act {ident} creates no obligation, so none of its obligations can be "
                     "met at once (met_at_once)", "behaviour", "acts", ident, "met_at_once")
            kind = getattr(acts[ident], "kind", None)
            allowed = _KIND_AXES.get(str(kind)) if kind is not None else None
            for axis in over.modifiers:
                if allowed is not None and axis not in allowed:
                    fail(
                        f"act {ident} is done by a {kind}, so its modifiers cannot depend on "
                        f"{axis!r}; use {', '.join(allowed)}",
                        "behaviour",
                        "acts",
                        ident,
                        "modifiers",
                        axis,
                    )
    for what, ids, known in (("channel", b.channels, channels), ("service", b.services, services)):
        if known is None:
            continue
        for ident in ids:
            if ident not in known:
                unknown(what, ident, known, "behaviour", what + "s", ident)
    if acts is not None and channels is not None and services is not None:
        problem = _rate_problem(scenario, acts, channels, services)
        if problem is not None:
            fail(problem[0], *problem[1])


def _rate_problem(scenario: Scenario, acts: dict[str, Any], channels: dict[str, Any],
                  services: dict[str, Any]) -> tuple[str, tuple[Any, ...]] | None:
    """Why the scenario's rates cannot be drawn, with where to say it, or None.

    The acts of one kind of subject may add up to at most one a day at their largest: every
    band modifier at its highest (their product capped at 8, as in the kernel), times the
    rises that feedback may add (uptake, and the listed factor when it is above 1). The same
    holds for the false records of each region and for the service requests of one month.
    A day of more than one act on average describes no person; the kernel would run it (each
    act keeps its own draws, docs/design-notes.md), but such a scenario is a mistake."""
    b = scenario.behaviour

    def value(over: Any, name: str, base: Any) -> float:
        v: Any = getattr(over, name, None) if over is not None else None
        v = v if v is not None else getattr(base, name, 0.0)
        if hasattr(v, "at"):  # a dated history: its largest value
            return max(float(x) for x in v.values())
        return float(v or 0.0)

    def top(over: Any, base: Any) -> float:
        mods = dict(getattr(base, "modifiers", None) or {})
        mods.update(getattr(over, "modifiers", None) or {})
        product = 1.0
        for values in mods.values():
            product *= max([1.0, *[float(v) for v in values]]) if values else 1.0
        return product

    rise = 1.0
    if scenario.feedback.uptake:
        rise *= 1.0 + b.uptake_strength
    if scenario.feedback.deterrence:
        rise *= max(1.0, b.listed_act_factor)
    per_kind: dict[str, float] = {}
    for ident, act in acts.items():
        over = b.acts.get(ident)
        daily = value(over, "rate_per_year", act) / 365.0 * min(MAX_MODIFIER, top(over, act) * rise)
        kind = str(getattr(act, "kind", "citizen"))
        per_kind[kind] = per_kind.get(kind, 0.0) + min(1.0, daily)
    for kind, total in per_kind.items():
        if total > 1.0:
            return (f"act rates are too high: at their largest (every modifier and feedback at "
                    f"its highest) a {kind}'s acts would add up to {total:.2f} a day, and a "
                    "subject can do at most one act a day", ("behaviour", "acts"))
    for k, region in enumerate(scenario.regions):
        per_kind = {}
        for ident, ch in channels.items():
            over_ch: Any = b.channels.get(ident)
            false_acts = list(getattr(ch, "false_acts", None) or [])
            if not false_acts:
                continue
            density = float(region.surveillance.get(ident, 1.0))
            share = density / len(false_acts) / 365.0
            misid = 1.0
            for values in (getattr(ch, "misid_modifiers", None) or {}).values():
                misid *= max([1.0, *[float(v) for v in values]])
            per_pair = min(1.0, value(over_ch, "false_per_year", ch) * share) + \
                min(1.0, value(over_ch, "misid_per_year", ch) * share) * misid
            for aid in false_acts:
                kind = str(getattr(acts.get(aid), "kind", "citizen"))
                per_kind[kind] = per_kind.get(kind, 0.0) + per_pair
        for kind, total in per_kind.items():
            if total > 1.0:
                return (f"false-record rates are too high in region {region.id}: a {kind} "
                        f"would get {total:.2f} false records a day at most, and at most one "
                        "can be drawn a day", ("regions", k, "surveillance"))
    for month in range(1, 13):
        per_kind = {}
        for ident, svc in services.items():
            months = list(getattr(svc, "months", None) or range(1, 13))
            if month not in months:
                continue
            over_svc: Any = b.services.get(ident)
            daily = value(over_svc, "requests_per_year", svc) * 12.0 / len(months) / 365.0
            if over_svc is not None:  # a dated demand index: its largest value
                daily *= value(over_svc, "demand", over_svc)
            kind = str(getattr(svc, "kind", "citizen"))
            per_kind[kind] = per_kind.get(kind, 0.0) + min(1.0, daily) * top(None, svc)
        for kind, total in per_kind.items():
            if total > 1.0:
                return (f"service request rates are too high: in month {month} a {kind} would "
                        f"ask for {total:.2f} services a day at most, and can ask for at most "
                        "one a day", ("behaviour", "services"))
    return None


def validate_extensions(scenario: Scenario) -> None:
    """Check that each region's extension is written for that region (an extension names
    its region; Hangzhou's rules on Rongcheng's citizens are a mistake, not a what-if).

    Raises :class:`UserError` naming the scenario file and the region's ``extension`` line."""
    from socialcredit.policy import load_policy

    for k, r in enumerate(scenario.regions):
        if r.extension is None:
            continue
        doc = load_policy(r.extension)
        if doc.kind == "extension" and doc.region not in (None, r.id):
            raise UserError(
                f"the extension '{r.extension}' is written for the region '{doc.region}', not "
                f"for '{r.id}'; give '{r.id}' its own extension or none",
                path=scenario.path, line=scenario.line_of("regions", k, "extension"),
            )


_KIND_AXES = {"citizen": ("income", "education", "age", "urban"), "business": ("size",)}


def _by_id(collection: Any) -> dict[str, Any] | None:
    if collection is None:
        return None
    if isinstance(collection, Mapping):
        return {str(k): v for k, v in collection.items()}
    out: dict[str, Any] = {}
    for item in collection:
        ident = item.get("id") if isinstance(item, Mapping) else getattr(item, "id", item)
        out[str(ident)] = item
    return out


# --- YAML plumbing ---------------------------------------------------------------------------


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    p = Path(text).expanduser()
    looks_like_path = p.suffix in (".yaml", ".yml") or "/" in text or "\\" in text
    if looks_like_path or p.exists():
        if not p.exists():
            raise UserError(f"scenario file {text} does not exist")
        return p  # a folder, a device or a pipe is refused by the reader
    shipped = resources.files("socialcredit") / "scenarios" / f"{text}.yaml"
    if not shipped.is_file():
        names = ", ".join(Scenario.shipped())
        raise UserError(f"unknown scenario {text!r}; the shipped scenarios are {names}")
    return Path(str(shipped))


def read_yaml_mapping(path: Path, what: str = "scenario") -> Any:
    """A YAML file of ``what`` (a scenario, a sweep …) as ruamel's round-trip mapping, which
    keeps every key's line; bad files become one sentence with the file and line.

    The file is read as every untrusted YAML file is (``yamlsource.read_text``: a regular
    file of bounded size, UTF-8 text) and its values are bounded in number and depth, with
    no tags but YAML's own."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from socialcredit.catalogue.yamlsource import MAX_DEPTH, check_size, read_text

    text = read_text(path)
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = err.problem or err.context or "malformed YAML"
        raise UserError(f"this is not valid YAML ({problem})", path=path, line=line) from None
    except YAMLError as err:
        raise UserError(f"this is not valid YAML ({err})", path=path) from None
    except RecursionError:
        raise UserError(f"values are nested more than {MAX_DEPTH} deep", path=path) from None
    except ValueError as err:
        # ruamel raises a bare ValueError, without a mark, for an impossible date
        line = _bad_scalar_line(text)
        raise UserError(f"this is not a valid value ({err})", path=path, line=line) from None
    if not isinstance(tree, Mapping):
        article = "an" if what[:1] in "aeiou" else "a"
        raise UserError(f"{article} {what} must be a mapping of keys to values", path=path, line=1)
    check_size(tree, _tree_children, _tree_line, path)
    _check_tags(tree, path)
    return tree


def _tree_children(node: Any) -> list[Any]:
    if isinstance(node, Mapping):
        return [*node.keys(), *node.values()]
    if isinstance(node, list):
        return list(node)
    return []


def _tree_line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    line = getattr(lc, "line", None)
    return int(line) + 1 if isinstance(line, int) else None


def _check_tags(tree: Any, path: Path) -> None:
    """Refuse values tagged with anything but YAML's plain types (``!foo``, ``!!python/…``)."""
    from ruamel.yaml.comments import TaggedScalar

    from socialcredit.catalogue.yamlsource import _PLAIN_TAGS

    def walk(node: Any, line: int | None) -> None:
        tag = getattr(getattr(node, "tag", None), "value", None)
        if tag is not None and tag not in _PLAIN_TAGS or isinstance(node, TaggedScalar):
            raise UserError(
                f"the tag '{tag}' is not supported; write plain values without tags",
                path=path, line=_tree_line(node) or line,
            )
        if isinstance(node, Mapping):
            for k, v in node.items():
                try:
                    here: int | None = node.lc.key(k)[0] + 1  # type: ignore[attr-defined]
                except (AttributeError, KeyError, TypeError):
                    here = line
                walk(k, here)
                walk(v, here)
        elif isinstance(node, list):
            for v in node:
                walk(v, line)

    walk(tree, 1)


def _bad_scalar_line(text: str) -> int | None:
    """The line of the first scalar that ruamel resolves as a date but cannot construct."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    def walk(node: Any) -> int | None:
        if isinstance(node, ScalarNode):
            if str(node.tag).endswith(":timestamp"):
                try:
                    dt.date.fromisoformat(str(node.value)[:10])
                except ValueError:
                    return int(node.start_mark.line) + 1
            return None
        children: list[Any] = []
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        for child in children:
            found = walk(child)
            if found is not None:
                return found
        return None

    try:
        return walk(YAML(typ="rt").compose(text))
    except Exception:  # noqa: BLE001 - only a hint for the message
        return None


def plain_value(node: Any, *, dates_as_text: bool = False) -> Any:
    """ruamel's round-trip nodes as plain Python values (dates as ISO text if asked)."""
    if isinstance(node, Mapping):
        return {str(k): plain_value(v, dates_as_text=dates_as_text) for k, v in node.items()}
    if isinstance(node, list):
        return [plain_value(v, dates_as_text=dates_as_text) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if dates_as_text and isinstance(node, dt.date):
        return node.isoformat()
    return node


def _line_map(tree: Any) -> dict[tuple[Any, ...], int]:
    """1-based line of every key and list item, by its path in the document."""
    out: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, loc: tuple[Any, ...]) -> None:
        if isinstance(node, Mapping) and hasattr(node, "lc"):
            for k, v in node.items():
                try:
                    out[(*loc, str(k))] = node.lc.key(k)[0] + 1
                except (KeyError, TypeError, AttributeError):
                    pass
                walk(v, (*loc, str(k)))
        elif isinstance(node, list) and hasattr(node, "lc"):
            for i, v in enumerate(node):
                try:
                    out[(*loc, i)] = node.lc.item(i)[0] + 1
                except (KeyError, TypeError, AttributeError):
                    pass
                walk(v, (*loc, i))

    walk(tree, ())
    return out


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    loc = tuple(x for x in loc if not (isinstance(x, str) and "[" in x))
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return 1 if lines else None


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and "[" in part:
            continue  # pydantic's names of union branches and validator wrappers
        else:
            out += f".{part}" if out else str(part)
    return out


def _user_error(err: ValidationError, tree: Any, path: Path | None) -> UserError:
    problems = err.errors(include_url=False)
    first = problems[0]
    loc = tuple(first.get("loc", ()))
    kind = first.get("type", "")
    msg = str(first.get("msg", "is not valid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    where = _where(loc)
    if kind == "extra_forbidden":
        parent = _where(loc[:-1])
        sentence = f"unknown key {loc[-1]!r}" + (f" in {parent}" if parent else "")
    elif kind == "missing":
        parent = _where(loc[:-1])
        sentence = f"the key {loc[-1]!r} is missing" + (f" in {parent}" if parent else "")
    else:
        sentence = f"{where}: {msg[:1].lower()}{msg[1:]}" if where else msg
    if len(problems) > 1:
        sentence += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    line = None
    if tree is not None:
        lines = _line_map(tree)
        # a missing key is reported at its parent; any other problem at the key itself
        line = _line_for(lines, loc[:-1] if kind == "missing" else loc)
    return UserError(sentence, path=path, line=line)
