"""Running rule cases (``tests/rules/*.yaml``) through the real day kernel.

A case (:mod:`socialcredit.policy.cases`) names a policy set-up, a few subjects, the records
they get and what must hold on given days. :func:`run_case` compiles the set-up into the
kernel's tables, builds a world in which nothing happens by itself — one region, the case's
subjects and nobody else who matters, every natural rate at zero (no acts, no false records,
no service requests, no objections, no repayments) — and runs the compiled day step of the
engine over the case's dates, putting the scripted records in on their days. Then it reads
the state the kernel left and compares it with the expectations.

How the scripted events enter, and why:

- A record reaches the system through the kernel's own record path: it is put in the
  subject's waiting slot for records (``delayed``, where a channel's delay parks records), due
  that day, so the day step hands it to ``process_record`` at the moment of the day where the
  kernel processes every record (after the turn of the year and the start of scoring, before
  appeals, exits, grades and decisions). Calling ``process_record`` from outside the step
  would run it out of phase: the step starts by clearing tomorrow's public word, where a
  forced grade is written, and by resetting a score whose scoring starts that day.
  The channel is the act's first channel; a case can put one record per subject and day.
- A true record is of an act that happened, so an act that creates an obligation (a debt, a
  fine, a missing report) opens one, as the kernel's acts phase does for the share of its
  obligations not met at once (a case scripts the ones left open; ``meets`` meets them); a
  false record opens none.
- ``meets: true`` meets one of the subject's open obligations that day, before the step (the
  kernel's repayments come before its exits, so a list left when obligations are met is left
  that day).

What is read on an expectation's date, at the end of that day:

- ``points``: the sum of the points of the subject's ledger rows so far (as applied, after
  clamping; expiries and appeals included);
- ``score`` and ``grade``: the subject's score and grade name, None when it carries none;
- ``lists``: the lists of its public word;
- ``measures``: every measure in force that is set off for the subject, with the semantics
  of the kernel's ``decide``: the subject's own lists and grades as of the end of the day,
  the other members of its group (a child's household adults, a representative's
  businesses, a business's representative) as of the start of the day. Only measures of
  services that the subject's kind asks for count; seasons and age bands of services do not.

Households are blocks of eight citizen ids (the kernel finds households from the population
table; the table built here cuts every block into one household); places the case does not
fill are taken by inert children. A business without a legal representative in the case gets
an inert adult as one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from socialcredit.catalogue import Catalogue, load_catalogue
from socialcredit.errors import UserError
from socialcredit.policy.cases import CaseEvent, CaseExpectation, RuleCase, check_case
from socialcredit.policy.compiler import compile_policy
from socialcredit.policy.tables import PolicyTables

__all__ = ["CaseRun", "Mismatch", "Observation", "run_case", "simulate_case"]

HOUSEHOLD_BLOCK = 8
_INERT_CHILD = {"income": 0, "education": 0, "age": 0, "urban": 0}
_INERT_ADULT = {"income": 0, "education": 0, "age": 2, "urban": 0}


@dataclass(frozen=True)
class Mismatch:
    """One expectation of a case that the kernel does not meet."""

    case: str
    file: str
    line: int
    date: dt.date
    subject: str
    key: str  # points | score | grade | honest_grade | lists | measures
    expected: Any
    actual: Any

    def sentence(self) -> str:
        """One plain sentence saying where and what."""
        return (
            f"{self.file}, line {self.line}: case '{self.case}': {self.subject} on {self.date}: "
            f"{self.key} should be {_show(self.expected)} but the kernel gives {_show(self.actual)}"
        )


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "none" if value is None else str(value)


@dataclass
class Observation:
    """What the kernel left for one subject at the end of one day."""

    points: int
    score: int | None
    grade: str | None
    lists: tuple[str, ...]
    measures: tuple[str, ...]
    honest_grade: str | None = None


@dataclass
class CaseRun:
    """A case simulated: what was observed on each expectation's date, per subject."""

    case: RuleCase
    observed: dict[tuple[dt.date, str], Observation] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


# --- the world of a case ----------------------------------------------------------------------


@dataclass
class _World:
    ids: dict[str, int]  # case subject -> subject id
    n_citizens: int
    bands: np.ndarray  # uint8[C+B]
    rep: np.ndarray  # uint32[B]


def _place_subjects(case: RuleCase) -> _World:
    """Subject ids: one block of eight citizens per household, then the businesses."""
    from socialcredit.population import pack_bands, pack_business

    subjects = case.subjects
    parent = {name: name for name in subjects}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for s in subjects.values():
        if s.kind == "citizen" and s.household is not None:
            parent[root(s.name)] = root(s.household)
    households: dict[str, list[str]] = {}
    for s in subjects.values():
        if s.kind == "citizen":
            households.setdefault(root(s.name), []).append(s.name)
    citizen_bands: list[int] = []
    ids: dict[str, int] = {}

    def citizen(b: dict[str, int], consent: bool) -> int:
        return int(pack_bands(b["income"], b["education"], b["age"], b["urban"], int(consent)))

    for members in households.values():
        if len(members) > HOUSEHOLD_BLOCK:
            raise UserError(
                f"case '{case.name}': a household has {len(members)} members; the runner "
                f"takes at most {HOUSEHOLD_BLOCK}",
                path=case.file, line=case.line,
            )
        # an adult first, as in generated households
        members = sorted(members, key=lambda n: subjects[n].bands["age"] == 0)
        for name in members:
            ids[name] = len(citizen_bands)
            citizen_bands.append(citizen(subjects[name].bands, subjects[name].consent))
        citizen_bands += [citizen(_INERT_CHILD, False)] * (HOUSEHOLD_BLOCK - len(members))
    businesses = [s for s in subjects.values() if s.kind == "business"]
    stand_in = -1
    if any(b.representative is None for b in businesses):
        stand_in = len(citizen_bands)
        citizen_bands.append(citizen(_INERT_ADULT, False))
        citizen_bands += [citizen(_INERT_CHILD, False)] * (HOUSEHOLD_BLOCK - 1)
    C = len(citizen_bands)
    reps = [ids[b.representative] if b.representative is not None else stand_in for b in businesses]
    order = sorted(range(len(businesses)), key=lambda k: reps[k])  # rep must not decrease
    business_bands = []
    for pos, k in enumerate(order):
        b = businesses[k]
        ids[b.name] = C + pos
        business_bands.append(int(pack_business(b.bands["size"], b.bands["sector"])))
    bands = np.array(citizen_bands + business_bands, dtype=np.uint8)
    rep = np.array([reps[k] for k in order], dtype=np.uint32)
    return _World(ids=ids, n_citizens=C, bands=bands, rep=rep)


def _quiet_behaviour(cat: Catalogue, region: str) -> Any:
    """A scenario-like object in which nothing happens unless a case scripts it."""
    return SimpleNamespace(
        regions=[{"id": region, "surveillance": {}}],
        feedback={},
        behaviour={
            "acts": {a.id: {"rate_per_year": 0.0} for a in cat.acts},
            "channels": {c.id: {"false_per_year": 0.0, "misid_per_year": 0.0} for c in cat.channels},
            "services": {s.id: {"requests_per_year": 0.0} for s in cat.services},
            "objection": {"base": 0.0},
            "repayment_per_year": 0.0,
        },
    )


def _model(case: RuleCase, cat: Catalogue, policy: PolicyTables, world: _World) -> Any:
    from socialcredit.behaviour import build_behaviour
    from socialcredit.engine import Model
    from socialcredit.kernel import layout as LY
    from socialcredit.kernel.pack import pack
    from socialcredit.population import (
        P_BEND,
        P_BSTART,
        P_CEND,
        P_CSTART,
        P_HH,
        POPT_WIDTH,
        Population,
    )
    from socialcredit.rng import ONE

    beh, n_pairs = build_behaviour(cat, _quiet_behaviour(cat, case.region), policy)
    tables: dict[str, np.ndarray] = {}
    tables.update(policy.arrays())
    tables.update(beh)
    C = world.n_citizens
    B = len(world.rep)
    popt = np.zeros((1, POPT_WIDTH), dtype=np.int64)
    popt[0, P_CSTART], popt[0, P_CEND], popt[0, P_BSTART], popt[0, P_BEND] = 0, C, C, C + B
    popt[0, P_HH:P_HH + 8] = [0] * 7 + [ONE]  # every block of eight is one household
    pop = Population(
        n_citizens=C, n_businesses=B, region=np.zeros(C + B, dtype=np.uint8), bands=world.bands,
        rep=world.rep, region_citizen_start=np.array([0, C], dtype=np.int64),
        region_business_start=np.array([C, C + B], dtype=np.int64), popt=popt,
        region_ids=[case.region], region_names=[case.region], admin_codes=[0], seed=0, scale=1.0,
    )
    dims = dict(E=policy.epoch_start.shape[0], R=1, A=len(policy.act_names),
                H=len(policy.channel_names), S=len(policy.service_names),
                L=len(policy.list_names), M=len(policy.measure_names),
                G=policy.grade_floor.shape[-1], P=n_pairs, T=len(policy.category_names),
                C=C, B=B, CELLS=LY.CELLS_PER_REGION)
    days = (case.end - case.start).days + 1
    model = Model(scenario=None, catalogue=cat, policy=policy, packed=pack(tables, dims),
                  population=pop, seed=0, start=case.start, days=days, burn_in=0,
                  n_false_pairs=n_pairs)
    model.extra["svc_kind"] = beh["svc_kind"]
    return model


# --- running ----------------------------------------------------------------------------------


def _inject(case: RuleCase, events: Sequence[CaseEvent], t: int, world: _World, state: dict,
            cat: Catalogue) -> None:
    """Put a day's scripted records into the waiting slot, and meet obligations.

    A record put in the slot also marks the subject's public word as the kernel does for the
    records it delays (the pending bit and, for a subject on no list, the day it falls due), so
    that the day's step looks at the slot."""
    from socialcredit.kernel.step import DELAYED_MASK, PENDING_BIT

    rec = state["st"]
    today = state["pub"][t & 1]
    seen: set[str] = set()
    for e in events:
        i = world.ids[e.subject]
        counts = int(rec["counts"][i])
        ob = counts >> 4
        act = cat.act(e.act)
        if e.meets:
            if ob == 0:
                raise UserError(
                    f"case '{case.name}': {e.subject} has no open obligation to meet on {e.date}",
                    path=case.file, line=e.line,
                )
            rec["counts"][i] = (counts & 15) | ((ob - 1) << 4)
            continue
        if e.subject in seen:
            raise UserError(
                f"case '{case.name}': {e.subject} has two records on {e.date}; the runner "
                "takes one record per subject and day",
                path=case.file, line=e.line,
            )
        seen.add(e.subject)
        if e.true and act.obligation and ob < 15:
            rec["counts"][i] = (counts & 15) | ((ob + 1) << 4)
        a = cat.act_index[e.act]
        ch = cat.channel_index[act.channels[0]]
        keep = int(rec["delayed"][i]) & ~DELAYED_MASK  # what repeat escalation keeps there
        rec["delayed"][i] = keep | (a + 1) | ((0 if e.true else 1) << 7) | (ch << 8) | ((t & 1023) << 13)
        word = int(today[i]) | PENDING_BIT
        if word & 255 == 0:  # on no list, bits 8-15 say on which day (mod 256) to look
            word = (word & ~0xFF00) | ((t & 255) << 8)
        today[i] = np.uint32(word)


def _observe(model: Any, world: _World, name: str, t: int, ctx: np.ndarray, state: dict,
             rep: np.ndarray, points: int) -> Observation:
    from socialcredit.kernel.layout import NO_GRADE
    from socialcredit.kernel.step import C_E, pub_grades, trigger_holds

    pol: PolicyTables = model.policy
    P = model.packed.P
    C = world.n_citizens
    i = world.ids[name]
    kind = 0 if i < C else 1
    par = t & 1
    own = int(state["pub"][1 - par, i])
    start = state["pub"][par]
    bands = state["st"]["bands"]
    e = int(ctx[C_E])
    M = len(pol.measure_names)
    scored = (own >> 29) & 1
    g = (own >> 16) & 15
    grade = None if g == NO_GRADE else pol.grade_names[0][kind][g]
    hg = (own >> 20) & 15
    honest = None if hg == NO_GRADE else pol.grade_names[0][kind][hg]
    lists = tuple(n for k, n in enumerate(pol.list_names) if (own >> k) & 1)
    age = (int(bands[i]) >> 4) & 3 if kind == 0 else 1
    svc_kind = model.extra["svc_kind"]

    def held(m: int, word: int) -> int:
        return int(trigger_holds(m, e, M, word & 65535, pub_grades(word), P))

    measures = []
    for m in range(M):
        if pol.measure_active[e, 0, m] == 0 or svc_kind[pol.measure_service[m]] != kind:
            continue
        reach = int(pol.measure_reach[e, 0, m])
        res = held(m, own) if reach & 1 else 0
        others: list[int] = []
        if reach & 2 and kind == 0 and age == 0:
            lo = i - i % HOUSEHOLD_BLOCK
            others += [j for j in range(lo, lo + HOUSEHOLD_BLOCK)
                       if j != i and (int(bands[j]) >> 4) & 3 != 0]
        if reach & 4 and kind == 0:
            others += [C + int(k) for k in np.nonzero(rep == i)[0]]
        if reach & 8 and kind == 1:
            others.append(int(rep[i - C]))
        for j in others:
            res = res or held(m, int(start[j]))
        if res:
            measures.append(pol.measure_names[m])
    return Observation(points=points, score=int(state["st"]["score"][i]) if scored else None,
                       grade=grade, honest_grade=honest, lists=lists, measures=tuple(measures))


def simulate_case(case: RuleCase, catalogue: Catalogue | None = None) -> CaseRun:
    """Run a case through the day kernel and observe its subjects on the expectations' dates."""
    import numba

    from socialcredit.engine import CpuBackend, new_state, whole
    from socialcredit.kernel.layout import EMIT_ALL

    cat = catalogue or load_catalogue()
    check_case(case, cat)
    policy = compile_policy(case.policy, [(case.region, case.extension)], case.reforms,
                            case.start, case.end, cat)
    world = _place_subjects(case)
    model = _model(case, cat, policy, world)
    shard = whole(model)
    state = new_state(model, shard)
    threads = numba.get_num_threads()
    try:
        # a handful of subjects: one thread, no cost of waking a pool every day
        backend = CpuBackend(model, shard, state, threads=1, emit=EMIT_ALL, event_capacity=1024)
        return _run(case, cat, model, world, shard, state, backend)
    finally:
        numba.set_num_threads(threads)


def _run(case: RuleCase, cat: Catalogue, model: Any, world: _World, shard: Any, state: dict,
         backend: Any) -> CaseRun:
    from socialcredit.engine import Calendar
    from socialcredit.kernel.layout import EMIT_ALL, EV_LEDGER

    cal = Calendar(model)
    by_day: dict[dt.date, list[CaseEvent]] = {}
    for ev in case.events:
        by_day.setdefault(ev.date, []).append(ev)
    wanted: dict[dt.date, list[CaseExpectation]] = {}
    for x in case.expect:
        wanted.setdefault(x.date, []).append(x)
    points = np.zeros(len(world.bands), dtype=np.int64)
    run = CaseRun(case=case, ids=dict(world.ids))
    for t in range(model.total_days):
        day = case.start + dt.timedelta(days=t)
        _inject(case, by_day.get(day, ()), t, world, state, cat)
        res = backend.run_day(t, cal)
        ledger = res.events[res.events[:, 0] == EV_LEDGER]
        np.add.at(points, ledger[:, 1], ledger[:, 3])
        if day in wanted:
            ctx = cal.ctx(t, model, shard, EMIT_ALL)
            for x in wanted[day]:
                if (day, x.subject) not in run.observed:
                    run.observed[(day, x.subject)] = _observe(
                        model, world, x.subject, t, ctx, state, world.rep,
                        int(points[world.ids[x.subject]]))
    return run


def run_case(case: RuleCase, catalogue: Catalogue | None = None) -> list[Mismatch]:
    """The expectations of a case that the kernel does not meet (empty: the case holds).

    Raises :class:`UserError` when the case cannot be run (unknown names, two records of one
    subject on one day, an obligation met that was never opened)."""
    run = simulate_case(case, catalogue)
    out: list[Mismatch] = []
    for x in case.expect:
        seen = run.observed[(x.date, x.subject)]

        def differ(key: str, expected: Any, actual: Any, x: CaseExpectation = x) -> None:
            if expected != actual:
                out.append(Mismatch(case.name, case.file, x.line, x.date, x.subject, key,
                                    expected, actual))

        if x.points is not None:
            differ("points", x.points, seen.points)
        if x.check_score:
            differ("score", x.score, seen.score)
        if x.check_grade:
            differ("grade", x.grade, seen.grade)
        if x.check_honest_grade:
            differ("honest_grade", x.honest_grade, seen.honest_grade)
        if x.lists is not None:
            differ("lists", tuple(sorted(x.lists)), tuple(sorted(seen.lists)))
        if x.measures is not None:
            differ("measures", tuple(sorted(x.measures)), tuple(sorted(seen.measures)))
    return out
