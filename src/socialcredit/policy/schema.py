"""The policy language's schema (DESIGN 2.6): one pydantic model per YAML section.

Every field is optional at this level because the same models read three kinds of document:
a baseline (which must be complete), a regional extension and a reform (which hold only what
they add or change). Completeness and cross-references are checked after layering, in
:mod:`socialcredit.policy.checks`, where the whole policy is known.

Numbers and yes/no values may be :class:`~socialcredit.policy.dated.Dated` histories. Ranges
that come from the kernel's integer widths (points are int16, days are uint16, appeal delays
fit 10 bits) are enforced here so mistakes are caught with their line.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, StringConstraints

from socialcredit.catalogue.yamlsource import Node
from socialcredit.policy.dated import Dated, parse_date

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
PolicyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")]
Day = Annotated[dt.date, BeforeValidator(parse_date)]
Kind = Literal["citizen", "business"]
Points = Annotated[int, Field(ge=-10000, le=10000)]
Score = Annotated[int, Field(ge=-30000, le=30000)]
Days = Annotated[int, Field(ge=0, le=65535)]
ShortDays = Annotated[int, Field(ge=0, le=32767)]
AppealDays = Annotated[int, Field(ge=0, le=1023)]
Chance = Annotated[float, Field(ge=0.0, le=1.0)]
Percent = Annotated[int, Field(ge=0, le=1000)]
ValidityYears = Annotated[int, Field(ge=0, le=2)]
AgeBand = Annotated[int, Field(ge=0, le=3)]
RecordsNeeded = Annotated[int, Field(ge=1, le=127)]
Text = Annotated[str, StringConstraints(min_length=1)]
Reach = Literal["subject", "children", "representative", "represented_business"]
Cadence = Literal["daily", "monthly", "yearly"]


class Item(Node):
    """A rule-like entry with an id: a points rule, an override, a list or a measure.

    Items are merged across layers by id. ``from``/``until`` (inclusive) bound when the item
    is in force; ``regions`` restricts it to some regions; ``mandatory`` forbids regional
    extensions to change it; ``remove: true`` in an extension or a reform deletes it.
    """

    id: Id | None = None
    from_: Day | None = Field(default=None, alias="from")
    until: Day | None = None
    regions: list[Id] | None = None
    mandatory: bool | None = None
    remove: bool | None = None
    verified: bool | None = None
    reference: Text | None = None
    note: str | None = None

    #: which policy last defined or changed the item, and every (policy, place) that did
    _origin: str | None = PrivateAttr(default=None)
    _trail: tuple[tuple[str, str], ...] = PrivateAttr(default=())
    #: (policy, keys it set, its reference) for the definition and every later change
    _history: tuple[tuple[str, frozenset[str], str | None], ...] = PrivateAttr(default=())

    @property
    def origin(self) -> str:
        """The name of the policy that last defined or changed this item."""
        return self._origin or "?"

    @property
    def trail(self) -> tuple[tuple[str, str], ...]:
        """(policy, ``file, line N``) for the definition and every later change."""
        return self._trail

    def set_origin(
        self,
        policy: str,
        trail: tuple[tuple[str, str], ...],
        history: tuple[tuple[str, frozenset[str], str | None], ...],
    ) -> None:
        """Record provenance; used when loading and layering."""
        self._origin = policy
        self._trail = trail
        self._history = history

    def source_of(self, fields: set[str]) -> tuple[str, str | None]:
        """(policy, reference) of the last layer that set any of ``fields``.

        A reform that changes a list's term should not take credit for the list's entry
        rule: compiled rule names and references follow the layer that wrote the part.
        """
        for i in range(len(self._history) - 1, -1, -1):
            policy, keys, _ = self._history[i]
            if i == 0 or keys & fields:
                for _, _, ref in reversed(self._history[: i + 1]):
                    if ref is not None:
                        return policy, ref
                return policy, self.reference
        return self.origin, self.reference

    def unverified(self) -> bool:
        """True when the item is marked unverified (``verified: false`` or ``[U]``)."""
        return self.verified is False or (self.reference is not None and "[U]" in self.reference)

    def in_force(self, day: dt.date) -> bool:
        """True when ``day`` is within ``from``..``until``."""
        return (self.from_ is None or self.from_ <= day) and (self.until is None or day <= self.until)

    def applies_in(self, region: str | None) -> bool:
        """True when the item applies in ``region`` (None: any region)."""
        return region is None or self.regions is None or region in self.regions


class PointsRule(Item):
    """Points for each record of an act."""

    act: Id | None = None
    points: Dated[Points] | None = None
    validity_years: Dated[ValidityYears] | None = None
    escalation_pct: Dated[Percent] | None = None


class Override(Item):
    """A record of the act forces a grade for some days (drunk driving -> C)."""

    act: Id | None = None
    grade: str | None = None
    days: Dated[ShortDays] | None = None


class Grade(Node):
    """A grade band: scores from ``min`` to ``max`` (both inclusive; ``max`` optional)."""

    name: Text | None = None
    min: Dated[Score] | None = None
    max: Dated[Score] | None = None
    note: str | None = None


class Cap(Node):
    """At most ``points`` deducted per calendar year from acts of one category."""

    category: Id | None = None
    points: Dated[Annotated[int, Field(ge=1, le=30000)]] | None = None
    reference: Text | None = None
    note: str | None = None


class ScoreKind(Node):
    """Scoring for one subject kind: the scale, the grades, the rules."""

    KEYED: ClassVar[dict[str, str]] = {"rules": "id", "overrides": "id", "caps": "category"}

    enabled: Dated[bool] | None = None
    start: Dated[Score] | None = None
    floor: Dated[Score] | None = None
    ceiling: Dated[Score] | None = None
    consent_required: Dated[bool] | None = None
    min_age_band: Dated[AgeBand] | None = None
    cadence: Dated[Cadence] | None = None
    rewards_only: bool | None = None
    grades: list[Grade] | None = None
    rules: list[PointsRule] | None = None
    caps: list[Cap] | None = None
    overrides: list[Override] | None = None
    reference: Text | None = None
    note: str | None = None


class ScoreSection(Node):
    """Scores for citizens and for businesses."""

    citizen: ScoreKind | None = None
    business: ScoreKind | None = None


class AfterList(Node):
    """Entry after ``days`` on another list; ``moves`` takes the subject off that list."""

    list: Id | None = None
    days: Dated[Days] | None = None
    moves: Dated[bool] | None = None


class ListEntry(Node):
    """The ways onto a list: records of acts (k within a window), a grade, another list."""

    acts: list[Id] | None = None
    k: Dated[RecordsNeeded] | None = None
    window_days: Dated[Days] | None = None
    grades: list[Text] | None = None
    after: AfterList | None = None


class RepairTerms(Node):
    """Credit repair: possible after ``min_days`` on the list, then granted at a daily chance."""

    min_days: Dated[Annotated[int, Field(ge=1, le=65535)]] | None = None
    daily_chance: Dated[Chance] | None = None
    reference: Text | None = None
    note: str | None = None


class ListExit(Node):
    """The ways off a list besides the term: meeting the obligation, credit repair."""

    obligation_met: Dated[bool] | None = None
    repair: bool | RepairTerms | None = None


class ListDef(Item):
    """A blacklist or redlist kept by an authority."""

    name: str | None = None
    kind: Literal["black", "red"] | None = None
    subject: Kind | None = None
    authority: Text | None = None
    entry: ListEntry | None = None
    term_days: Dated[Days] | None = None
    extend_days: Dated[Days] | None = None
    exit: ListExit | None = None


class Trigger(Node):
    """What sets a measure off: being on any of ``lists``, or having one of ``grades``.

    ``subject`` says whose grades are read (citizens' or businesses'); by default the kind
    that asks for the service.
    """

    lists: list[Id] | None = None
    grades: list[Text] | None = None
    subject: Kind | None = None


class Measure(Item):
    """A sanction or privilege: the service it decides, its trigger, whom it reaches."""

    service: Id | None = None
    effect: Literal["deny", "fast_track", "throttle"] | None = None
    trigger: Trigger | None = None
    reach: list[Reach] | None = None
    authority: Text | None = None


class Appeals(Node):
    """Objections to records and their appeal."""

    objection_window_days: Dated[Days] | None = None
    delay_days: Dated[AppealDays] | None = None
    win_true: Dated[Chance] | None = None
    win_false: Dated[Chance] | None = None
    reference: Text | None = None
    note: str | None = None


class PolicyDocument(Node):
    """One policy file (or the files of one policy folder, combined)."""

    KEYED: ClassVar[dict[str, str]] = {"lists": "id", "measures": "id"}

    name: PolicyName | None = None
    kind: Literal["baseline", "extension", "reform"] | None = None
    extends: PolicyName | None = None
    region: Id | None = None
    parts: list[Text] | None = None
    description: str | None = None
    reference: Text | None = None
    score: ScoreSection | None = None
    lists: list[ListDef] | None = None
    measures: list[Measure] | None = None
    repair: RepairTerms | None = None
    appeals: Appeals | None = None

    #: the layers this document was built from, baseline first (names)
    _layers: tuple[str, ...] = PrivateAttr(default=())
    #: the loaded document this one extends (None for a baseline)
    _base: PolicyDocument | None = PrivateAttr(default=None)
    #: the top layer as read from its file, before layering (reforms are re-applied from it)
    _own: PolicyDocument | None = PrivateAttr(default=None)

    @property
    def layers(self) -> tuple[str, ...]:
        """Names of the documents this policy was layered from, baseline first."""
        return self._layers or ((self.name or "?"),)

    @property
    def base(self) -> PolicyDocument | None:
        """The document this one extends, loaded (None for a baseline)."""
        return self._base

    @property
    def own(self) -> PolicyDocument:
        """The top layer as written in its file (this document itself for a plain read)."""
        return self._own if self._own is not None else self


#: Header keys that only a policy's main file may carry (not the part files of a folder).
HEADER_KEYS = ("name", "kind", "extends", "region", "parts")
