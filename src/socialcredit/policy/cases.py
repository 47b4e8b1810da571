"""Rule cases as data (OpenFisca style): inputs -> expected points, grade, lists, measures.

A case file (``tests/rules/*.yaml``) holds a list of cases. Each case names a policy, a region
(and optionally the region's extension and reforms), a few subjects, the records they get on
given days, and what must hold on given days. The runner injects the records directly (no
behaviour, no channels: ``true`` says whether the record is of an act that happened) and runs
the real day kernel; this module only reads and checks the files.

.. code-block:: yaml

    cases:
      - name: a traffic ticket costs five points in Rongcheng
        policy: national
        region: rongcheng            # extension: the region's shipped one unless given
        start: 2019-01-01            # first simulated day
        subjects:
          resident: {kind: citizen, age: 2, income: 1, education: 1, urban: 1, consent: true}
        records:
          - {date: 2019-03-01, act: traffic_ticket, true: true}
        expect:
          - {date: 2019-03-02, points: -5, score: 995, lists: [], measures: []}

What the expectations mean, at the end of ``date``:

- ``points``: the sum of points applied to the subject so far (after clamping);
- ``score``: the subject's score (``null``: the subject carries no score);
- ``grade``: the subject's grade name (``null``: no grade);
- ``honest_grade``: the grade it would have without the points of false records, the
  escalation they caused included (what the wrongful check of DESIGN 2.7 compares);
- ``lists``: exactly the lists the subject is on;
- ``measures``: exactly the measures that would decide a request of the subject that day,
  whether set off by the subject itself or reaching it (a child, a legal representative).

Only the keys given are checked. An event with ``meets: true`` instead meets the subject's
open obligation created by ``act`` (a paid debt, a filed report) on that day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from socialcredit.catalogue import BANDS, Catalogue, load_catalogue
from socialcredit.catalogue.yamlsource import Node, did_you_mean, read_file, validate
from socialcredit.errors import UserError
from socialcredit.policy.compiler import compile_policy
from socialcredit.policy.loading import default_extension
from socialcredit.policy.schema import Day, Id

_UNSET: Any = object()


@dataclass(frozen=True)
class CaseSubject:
    """A synthetic subject of a case: its kind, bands and links to others."""

    name: str
    kind: str  # citizen | business
    bands: dict[str, int]  # citizens: income, education, age, urban; businesses: size, sector
    consent: bool
    household: str | None  # a citizen: another case subject it shares a household with
    representative: str | None  # a business: the case subject who is its legal representative
    line: int


@dataclass(frozen=True)
class CaseEvent:
    """A record injected on a day (or, with ``meets``, an obligation met)."""

    date: dt.date
    subject: str
    act: str
    true: bool
    meets: bool
    line: int


@dataclass(frozen=True)
class CaseExpectation:
    """What must hold for a subject at the end of a day.

    ``points``, ``lists`` and ``measures`` are not checked when None. ``score``, ``grade``
    and ``honest_grade`` are checked when ``check_score`` / ``check_grade`` /
    ``check_honest_grade`` is set; then None means the subject carries no score or grade.
    """

    date: dt.date
    subject: str
    points: int | None
    score: int | None
    check_score: bool
    grade: str | None
    check_grade: bool
    lists: tuple[str, ...] | None
    measures: tuple[str, ...] | None
    line: int
    honest_grade: str | None = None
    check_honest_grade: bool = False


@dataclass(frozen=True)
class RuleCase:
    """One rule case: the policy set-up, subjects, events and expectations."""

    name: str
    file: str
    line: int
    policy: str
    region: str
    extension: str | None
    reforms: tuple[str, ...]
    start: dt.date
    subjects: dict[str, CaseSubject]
    events: tuple[CaseEvent, ...]
    expect: tuple[CaseExpectation, ...]
    description: str = ""

    @property
    def end(self) -> dt.date:
        """The last day the case needs simulated."""
        return max([e.date for e in self.expect] + [e.date for e in self.events] + [self.start])


# --- the file schema -----------------------------------------------------------------------------

Band = Annotated[int, Field(ge=0, le=15)]


class _Subject(Node):
    kind: Literal["citizen", "business"]
    income: Band | None = None
    education: Band | None = None
    age: Band | None = None
    urban: Band | None = None
    consent: bool = False
    household: Id | None = None
    size: Band | None = None
    sector: Band | None = None
    representative: Id | None = None


class _Event(Node):
    date: Day
    act: Id
    subject: Id | None = None
    true_: bool = Field(default=True, alias="true")
    meets: bool = False


class _Expect(Node):
    date: Day
    subject: Id | None = None
    points: int | None = None
    score: int | None = _UNSET
    grade: str | None = _UNSET
    honest_grade: str | None = _UNSET
    lists: list[Id] | None = None
    measures: list[Id] | None = None


class _Case(Node):
    name: str
    description: str = ""
    policy: str
    region: Id
    extension: str | None = _UNSET
    reforms: list[str] = Field(default_factory=list)
    start: Day
    subject: _Subject | None = None
    subjects: dict[Id, _Subject] | None = None
    records: list[_Event] = Field(default_factory=list)
    expect: list[_Expect] = Field(min_length=1)


class _CaseFile(Node):
    cases: list[_Case] = Field(min_length=1)


_DEFAULT_BANDS = {"income": 1, "education": 1, "age": 2, "urban": 1, "size": 1, "sector": 0}


def _subject(name: str, s: _Subject) -> CaseSubject:
    axes = list(BANDS[s.kind]) + (["sector"] if s.kind == "business" else [])
    for other in ("income", "education", "age", "urban", "size", "sector"):
        if other not in axes and getattr(s, other) is not None:
            raise s.error(f"a {s.kind} has no '{other}' band", other)
    bands = {}
    for axis in axes:
        value = getattr(s, axis)
        bands[axis] = _DEFAULT_BANDS[axis] if value is None else value
        limit = BANDS[s.kind].get(axis, 16)
        if bands[axis] >= limit:
            raise s.error(f"the '{axis}' band must be below {limit}", axis)
    if s.kind == "business" and s.household is not None:
        raise s.error("a business belongs to no household; give its 'representative'", "household")
    if s.kind == "citizen" and s.representative is not None:
        raise s.error("only a business has a 'representative'", "representative")
    return CaseSubject(name, s.kind, bands, s.consent, s.household, s.representative, s.line or 0)


def _case(c: _Case, file: str) -> RuleCase:
    if c.subject is not None and c.subjects is not None:
        raise c.error("give either 'subject' or 'subjects', not both", "subjects")
    raw = c.subjects if c.subjects is not None else ({"subject": c.subject} if c.subject else {})
    if not raw:
        raise c.error(f"the case '{c.name}' has no 'subject'")
    subjects = {name: _subject(name, s) for name, s in raw.items()}
    first = next(iter(subjects))
    for s in subjects.values():
        for link in (s.household, s.representative):
            if link is not None and link not in subjects:
                raise raw[s.name].error(f"the case has no subject named '{link}'")
        if s.representative is not None and subjects[s.representative].kind != "citizen":
            raise raw[s.name].error("a legal representative must be a citizen", "representative")
    events = []
    for e in c.records:
        name = e.subject or first
        if name not in subjects:
            raise e.error(f"the case has no subject named '{name}'", "subject")
        events.append(CaseEvent(e.date, name, e.act, e.true_, e.meets, e.line or 0))
    expects = []
    for x in c.expect:
        name = x.subject or first
        if name not in subjects:
            raise x.error(f"the case has no subject named '{name}'", "subject")
        expects.append(
            CaseExpectation(
                date=x.date,
                subject=name,
                points=x.points,
                score=None if x.score is _UNSET else x.score,
                check_score=x.score is not _UNSET,
                grade=None if x.grade is _UNSET else x.grade,
                check_grade=x.grade is not _UNSET,
                lists=tuple(x.lists) if x.lists is not None else None,
                measures=tuple(x.measures) if x.measures is not None else None,
                line=x.line or 0,
                honest_grade=None if x.honest_grade is _UNSET else x.honest_grade,
                check_honest_grade=x.honest_grade is not _UNSET,
            )
        )
        if x.date < c.start:
            raise x.error(f"the expectation's date {x.date} is before the case starts ({c.start})", "date")
    for e in c.records:
        if e.date < c.start:
            raise e.error(f"the record's date {e.date} is before the case starts ({c.start})", "date")
    ext = c.extension
    if ext is _UNSET:
        ext = default_extension(c.region, c.policy)
    return RuleCase(
        name=c.name,
        file=file,
        line=c.line or 0,
        policy=c.policy,
        region=c.region,
        extension=ext,
        reforms=tuple(c.reforms),
        start=c.start,
        subjects=subjects,
        events=tuple(events),
        expect=tuple(expects),
        description=c.description,
    )


def load_cases(path: str | Path) -> list[RuleCase]:
    """The rule cases of one file, as plain dataclasses (structure checked, with lines)."""
    data, lines = read_file(path)
    parsed = validate(_CaseFile, data, lines, str(path))
    cases = [_case(c, str(path)) for c in parsed.cases]
    names: dict[str, int] = {}
    for case in cases:
        if case.name in names:
            raise UserError(f"two cases are named '{case.name}'", path=str(path), line=case.line)
        names[case.name] = case.line
    return cases


def check_case(case: RuleCase, catalogue: Catalogue | None = None) -> None:
    """Check a case against its policies: acts, lists, measures, grades and regions exist.

    Compiles the case's policy set-up (as the runner will) and raises :class:`UserError`
    naming the case file and line of the first mismatch.
    """
    cat = catalogue or load_catalogue()

    def fail(message: str, line: int) -> UserError:
        return UserError(f"case '{case.name}': {message}", path=case.file, line=line)

    try:
        tables = compile_policy(
            case.policy, [(case.region, case.extension)], case.reforms, case.start, case.end, cat
        )
    except UserError as err:
        raise fail(err.sentence(), case.line) from None
    for e in case.events:
        if e.act not in cat.act_index:
            raise fail(f"unknown act '{e.act}'{did_you_mean(e.act, cat.act_index)}", e.line)
        kind = case.subjects[e.subject].kind
        if cat.act(e.act).kind != kind:
            raise fail(f"the act '{e.act}' is not an act of a {kind}", e.line)
        if e.meets and not cat.act(e.act).obligation:
            raise fail(f"the act '{e.act}' creates no obligation to meet", e.line)
    for x in case.expect:
        kind = case.subjects[x.subject].kind
        k = 0 if kind == "citizen" else 1
        for name in x.lists or ():
            if name not in tables.list_names:
                raise fail(f"unknown list '{name}'{did_you_mean(name, tables.list_names)}", x.line)
        for name in x.measures or ():
            if name not in tables.measure_names:
                raise fail(f"unknown measure '{name}'{did_you_mean(name, tables.measure_names)}", x.line)
        for given, check in ((x.grade, x.check_grade), (x.honest_grade, x.check_honest_grade)):
            grades = tables.grade_names[0][k]
            if check and given is not None and given not in grades:
                raise fail(f"'{given}' is not a {kind} grade in {case.region} ({', '.join(grades) or 'none'})", x.line)
