"""``explain``: the story of one citizen or business, replayed from the seed.

The run need not have stored a ledger. A subject's trajectory depends only on the seed, the
policy and its own group (DESIGN 2.2), so replaying the group alone — a household and the
businesses its members represent — gives exactly the events the whole run gave that subject
(DESIGN 2.9). Where the run did store a ledger, :func:`ledger_check` compares the replay with
it table by table; any difference is reported, never hidden.

The story is a JSON-ready dict (``explain --json``); ``socialcredit.commands.analysis``
renders it for the terminal.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from socialcredit.analysis.common import (
    build_run_model,
    check_trusted,
    date_of,
    grade_name,
    has_ledger,
    open_run,
    scenario_of,
)
from socialcredit.kernel import layout as LY

if TYPE_CHECKING:
    import pyarrow as pa

    from socialcredit.engine import Model
    from socialcredit.store import Run

#: The tables a ledger run stores that a replay reproduces row for row.
LEDGER_TABLES = ("records", "ledger", "list_events", "decisions", "restrictions")

#: Days replayed per call of the engine (bounds the memory of the per-day counters).
REPLAY_CHUNK_DAYS = 32

REACH_SUBJECT, REACH_CHILDREN, REACH_REPRESENTATIVE, REACH_REPRESENTED_BUSINESS = 1, 2, 4, 8


@dataclass
class Replay:
    """One group replayed alone: every event of every member, day by day."""

    run: Run
    model: Model
    subject: int
    group: tuple[int, int, int, int]  # citizens [lo, hi), business ids [lo, hi)
    events: list[np.ndarray]  # per simulated day t (burn-in included), int32[n, EV_WIDTH]

    @property
    def members(self) -> list[int]:
        c_lo, c_hi, b_lo, b_hi = self.group
        return list(range(c_lo, c_hi)) + list(range(b_lo, b_hi))


def replay_group(run: str | Path | Run, subject: str | int, *,
                 model: Model | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 notice: Callable[[str], None] | None = None) -> Replay:
    """Replay the group of ``subject`` (an id or a business's USCC) alone, from the seed.

    ``model`` (from :func:`~socialcredit.analysis.common.build_run_model`) saves rebuilding
    it when replaying many subjects of one run. ``progress(done, total)`` is called after
    each chunk of days, ``notice(text)`` while the model is built and the kernels compile."""
    from socialcredit.engine import Shard, run_memory
    from socialcredit.population import subject_id

    run = open_run(run)
    check_trusted(run, "explain")
    if model is None:
        if notice:
            notice("building the run's population")
        model = build_run_model(run)
    sid = subject_id(model.population, str(subject))
    if notice:
        from socialcredit.run import COMPILING, cpu_kernels_compiled

        notice("" if cpu_kernels_compiled() else COMPILING)
    c_lo, c_hi, b_lo, b_hi = model.population.group_of(sid)
    C = model.n_citizens
    # Shard takes business *indices*; the group gives business ids (>= C)
    shard = Shard(c_lo, c_hi, b_lo - C, b_hi - C)
    # run_memory keeps every day's counters of every cell of the run; in chunks of days, a
    # replay's memory stays small even for a run with hundreds of regions
    events: list[np.ndarray] = []
    state = None
    total = model.total_days
    for t0 in range(0, total, REPLAY_CHUNK_DAYS):
        mem = run_memory(model, shard, emit=LY.EMIT_ALL, t0=t0,
                         until=min(total, t0 + REPLAY_CHUNK_DAYS), state=state)
        state = mem.state
        events.extend(mem.events)
        if notice and t0 == 0:
            notice("")
        if progress:
            progress(len(events), total)
    return Replay(run=run, model=model, subject=sid, group=(c_lo, c_hi, b_lo, b_hi),
                  events=events)


# --- the replay against the stored ledger ---------------------------------------------------


def replay_tables(replay: Replay, subject: int | None = None) -> dict[str, pa.Table]:
    """The ledger tables (``records``, ``ledger``, ``list_events``, ``decisions``,
    ``restrictions``) of one
    subject of the group over the reported days, built from the replay exactly as the
    recorder builds them from a whole run."""
    import pyarrow as pa

    from socialcredit.recording import SCHEMAS, event_tables

    sid = replay.subject if subject is None else subject
    m = replay.model
    parts: dict[str, list[pa.Table]] = {name: [] for name in LEDGER_TABLES}
    for t in range(m.burn_in, m.total_days):
        ev = replay.events[t]
        ev = ev[ev[:, 1] == sid]
        if ev.shape[0] == 0:
            continue
        for name, tab in event_tables(m, int(m.first_day + t), ev).items():
            if name in parts:
                parts[name].append(tab)
    return {name: (pa.concat_tables(p) if p else SCHEMAS[name].empty_table())
            for name, p in parts.items()}


def stored_tables(run: Run, subject: int) -> dict[str, pa.Table]:
    """The same tables as stored in a ledger run, for one subject, in the order written."""
    from socialcredit.recording import SCHEMAS

    out = {}
    for name in LEDGER_TABLES:
        cols = [f.name for f in SCHEMAS[name]]
        out[name] = run.table(name, cols, where="subject_id = ?", params=[int(subject)])
    return out


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    # dictionary columns decode to their strings, so a stored VARCHAR and a replayed
    # dictionary column compare by value
    return [tuple(r.values()) for r in table.to_pylist()]


def ledger_check(replay: Replay, subject: int | None = None) -> dict[str, Any]:
    """Compare the replay of a subject with the run's stored ledger, table by table.

    ``status`` is ``identical``, ``differs`` or ``no ledger``; each table gives its row
    counts and, where it differs, the first differing row of each side."""
    sid = replay.subject if subject is None else subject
    run = replay.run
    if not has_ledger(run):
        return {"status": "no ledger", "tables": {}}
    replayed = replay_tables(replay, sid)
    stored = stored_tables(run, sid)
    tables: dict[str, Any] = {}
    same = True
    for name in LEDGER_TABLES:
        a, b = _rows(stored[name]), _rows(replayed[name])
        entry: dict[str, Any] = {"stored": len(a), "replayed": len(b), "equal": a == b}
        if a != b:
            same = False
            k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                     min(len(a), len(b)))
            entry["first_difference"] = {
                "stored": _jsonable(a[k]) if k < len(a) else None,
                "replayed": _jsonable(b[k]) if k < len(b) else None,
            }
        tables[name] = entry
    return {"status": "identical" if same else "differs", "tables": tables}


def _jsonable(row: tuple[Any, ...]) -> list[Any]:
    return [v.isoformat() if hasattr(v, "isoformat") else v for v in row]


# --- the story --------------------------------------------------------------------------------


@dataclass
class _State:
    """What the system holds about one member, as the events say."""

    score: int | None = None
    grade: int = LY.NO_GRADE
    honest: int = LY.NO_GRADE
    lists: dict[int, bool] = field(default_factory=dict)  # list index -> false-caused
    obligations: int = 0
    throttled_since: int | None = None  # day number the throttled connection began


class _Story:
    """Turns a replay's integer events into the readable events of one subject."""

    def __init__(self, replay: Replay):
        self.r = replay
        m = replay.model
        self.m = m
        self.pol = m.policy
        self.pop = m.population
        self.C = m.n_citizens
        self.sid = replay.subject
        self.region = int(self.pop.region[self.sid])
        self.kind = 0 if self.sid < self.C else 1
        self.states = {j: _State() for j in replay.members}
        # the subject's own list events and records of the burn-in (not told, but they say
        # why it is on a list when the reported days begin): (day, event)
        self.burn_in_log: list[tuple[int, dict[str, Any]]] = []
        self.epochs = np.asarray(self.pol.epoch_start, dtype=np.int64)
        self.measure_refs = _measure_references(replay.run)
        self.rule_refs = list(self.pol.rule_references)
        cat = m.catalogue
        self.act_category = {a.id: a.category for a in cat.acts}

    # names
    def rule(self, rule: int) -> str:
        from socialcredit.recording import rule_label

        return rule_label(self.m, rule)

    def rule_ref(self, rule: int) -> str:
        return self.rule_refs[rule] if 0 <= rule < len(self.rule_refs) else ""

    def grade(self, subject: int, g: int) -> str:
        kind = 0 if subject < self.C else 1
        return grade_name(self.pol, int(self.pop.region[subject]), kind, int(g))

    def reason(self, code: int) -> str:
        return LY.EXIT_NAMES.get(code, "unknown") if code < 0 else self.rule(code)

    def state_view(self, subject: int) -> dict[str, Any]:
        st = self.states[subject]
        return {
            "score": st.score,
            "grade": self.grade(subject, st.grade),
            "lists": [{"list": self.pol.list_names[k], "false_caused": v}
                      for k, v in sorted(st.lists.items())],
            "open_obligations": st.obligations,
            "throttled_since": (date_of(st.throttled_since).isoformat()
                                if st.throttled_since is not None else None),
        }

    # the trigger of a measure, read as the kernel reads it
    def holds(self, m: int, e: int, subject: int, st: _State) -> str | None:
        pol = self.pol
        r = self.region
        mask = int(pol.measure_lists[e, r, m])
        for k in sorted(st.lists):
            if (mask >> k) & 1:
                return f"on the list {pol.list_names[k]}"
        lo, hi = int(pol.measure_grade_lo[e, r, m]), int(pol.measure_grade_hi[e, r, m])
        if lo >= 0 and st.grade != LY.NO_GRADE and lo <= st.grade <= hi:
            return f"grade {self.grade(subject, st.grade)}"
        return None

    def cause(self, m: int, day: int, before: dict[int, _State]) -> dict[str, Any]:
        """Whose status set off measure ``m`` for this subject: its own, or a member's of its
        group as of the start of the day (DESIGN 3)."""
        e = max(0, int(np.searchsorted(self.epochs, day, side="right")) - 1)
        reach = int(self.pol.measure_reach[e, self.region, m])
        sid = self.sid
        if reach & REACH_SUBJECT:
            why = self.holds(m, e, sid, self.states[sid])
            if why:
                return {"via": None, "trigger": why}
        c_lo, c_hi, b_lo, b_hi = self.r.group
        cands: list[tuple[int, str]] = []
        if self.kind == 0 and (reach & REACH_CHILDREN) and self._age(sid) == 0:
            cands += [(j, "an adult of its household") for j in range(c_lo, c_hi)
                      if j != sid and self._age(j) != 0]
        if self.kind == 0 and (reach & REACH_REPRESENTATIVE):
            cands += [(b, "a business it represents") for b in range(b_lo, b_hi)
                      if int(self.pop.rep[b - self.C]) == sid]
        if self.kind == 1 and (reach & REACH_REPRESENTED_BUSINESS):
            cands.append((int(self.pop.rep[sid - self.C]), "its legal representative"))
        for j, relation in cands:
            why = self.holds(m, e, j, before[j])
            if why:
                return {"via": {"subject_id": j, "relation": relation}, "trigger": why}
        return {"via": None, "trigger": None}

    def _age(self, j: int) -> int:
        return (int(self.pop.bands[j]) >> 4) & 3

    # one event
    def apply(self, row: np.ndarray, day: int, before: dict[int, _State],
              tell: bool) -> dict[str, Any] | None:
        pol = self.pol
        typ, subj, a, b, c, d = (int(x) for x in row)
        st = self.states.get(subj)
        if st is None:
            return None
        out: dict[str, Any] | None = None
        if typ == LY.EV_ACT:
            if b:
                st.obligations = min(255, st.obligations + 1)
            act = pol.act_names[a]
            out = {"type": "act", "act": act, "category": self.act_category.get(act, ""),
                   "obligation": bool(b or c), "met_at_once": bool(c)}
        elif typ == LY.EV_RECORD:
            out = {"type": "record", "act": pol.act_names[a], "channel": pol.channel_names[b],
                   "true_record": bool(c), "delayed": d == 1, "corroborating": d == 2}
        elif typ == LY.EV_LEDGER:
            st.score = c
            out = {"type": "points", "rule": self.rule(a), "reference": self.rule_ref(a),
                   "points": b, "score": c, "false_record": bool(d)}
        elif typ == LY.EV_GRADE:
            st.grade, st.honest = b, d
            if b == LY.NO_GRADE:
                st.score = None
            out = {"type": "grade", "from": self.grade(subj, a), "to": self.grade(subj, b),
                   "honest": self.grade(subj, d)}
        elif typ == LY.EV_OVERRIDE:
            out = {"type": "override", "act": pol.act_names[a], "grade": self.grade(subj, b),
                   "rule": self.rule(c), "reference": self.rule_ref(c),
                   "until": date_of(self.m.first_day + d).isoformat()}
        elif typ == LY.EV_LIST:
            event = ("enter", "extend", "exit")[b]
            if b == LY.LIST_ENTER:
                st.lists[a] = bool(d)
            elif b == LY.LIST_EXIT:
                st.lists.pop(a, None)
            out = {"type": "list", "list": pol.list_names[a], "event": event,
                   "reason": self.reason(c), "reference": self.rule_ref(c) if c >= 0 else "",
                   "false_caused": bool(d)}
        elif typ == LY.EV_OBJECTION:
            out = {"type": "objection", "act": pol.act_names[a], "channel": pol.channel_names[b],
                   "true_record": bool(c), "no_free_slot": bool(d)}
        elif typ == LY.EV_APPEAL:
            out = {"type": "appeal", "act": pol.act_names[a], "channel": pol.channel_names[b],
                   "true_record": bool(c), "won": bool(d)}
        elif typ == LY.EV_REPAY:
            st.obligations = a
            out = {"type": "repayment", "open_obligations": a}
        elif typ == LY.EV_INCOME:
            from socialcredit.population import INCOME_BANDS

            out = {"type": "income", "from": INCOME_BANDS[a], "to": INCOME_BANDS[b]}
        elif typ == LY.EV_DECISION:
            out = {"type": "decision", "service": pol.service_names[a],
                   "outcome": LY.OUTCOME_NAMES[b],
                   "measure": pol.measure_names[c] if c >= 0 else None,
                   "reference": self.measure_refs.get(pol.measure_names[c], "") if c >= 0 else "",
                   "wrongful": bool(d),
                   "throttled": c >= 0 and int(pol.measure_effect[c]) == LY.EFFECT_THROTTLE}
            if c >= 0 and tell and subj == self.sid:
                out.update(self.cause(c, day, before))
        elif typ == LY.EV_RESTRICTION:
            out = {"type": "restriction", "service": pol.service_names[a],
                   "event": "start" if b == LY.RESTRICTION_START else "end",
                   "measure": pol.measure_names[c] if c >= 0 else None, "wrongful": bool(d)}
            if b == LY.RESTRICTION_START:
                st.throttled_since = day
            else:
                out["since"] = (date_of(st.throttled_since).isoformat()
                                if st.throttled_since is not None else None)
                out["days"] = day - st.throttled_since if st.throttled_since is not None else None
                st.throttled_since = None
        if subj != self.sid:
            return None
        if not tell:
            if out is not None and out["type"] in ("list", "record", "restriction"):
                self.burn_in_log.append((day, out))
            return None
        return out

    def listed_since_burn_in(self) -> list[dict[str, Any]]:
        """For each list the subject is on when the reported days begin, the burn-in entry
        that put it there: day, rule, reference, whether a false record caused it, and the
        subject's records of that day (the record that triggered the entry among them)."""
        held = set(self.states[self.sid].lists)
        out = []
        for k in sorted(held):
            name = self.pol.list_names[k]
            entry = next(((d, e) for d, e in reversed(self.burn_in_log)
                          if e["type"] == "list" and e["list"] == name and e["event"] == "enter"),
                         None)
            if entry is None:
                continue
            day, e = entry
            records = [r for d, r in self.burn_in_log if d == day and r["type"] == "record"]
            out.append({"list": name, "day": date_of(day).isoformat(), "reason": e["reason"],
                        "reference": e["reference"], "false_caused": e["false_caused"],
                        "records": records})
        return out

    def run(self) -> dict[str, Any]:
        m = self.m
        sid = self.sid
        days: list[dict[str, Any]] = []
        at_start: dict[str, Any] | None = None
        for t in range(m.total_days):
            if t == m.burn_in:
                at_start = self.state_view(sid)
                at_start["listed_in_burn_in"] = self.listed_since_burn_in()
            ev = self.r.events[t]
            if ev.shape[0] == 0:
                continue
            day = int(m.first_day + t)
            tell = t >= m.burn_in
            before = copy.deepcopy(self.states) if (ev[:, 0] == LY.EV_DECISION).any() else {}
            told = []
            for row in ev:
                e = self.apply(row, day, before, tell)
                if e is not None:
                    told.append(e)
            if told:
                days.append({"day": date_of(day).isoformat(), "events": told})
        if at_start is None:
            at_start = self.state_view(sid)
            at_start["listed_in_burn_in"] = self.listed_since_burn_in()
        return {"days": days, "at_start": at_start, "at_end": self.state_view(sid)}


def _measure_references(run: Run) -> dict[str, str]:
    """Measure id -> reference, from the run's baseline, extensions and reforms."""
    from socialcredit.policy import load_policy

    sc = scenario_of(run)
    refs: dict[str, str] = {}
    names = [sc.policy, *[r.extension for r in sc.regions if r.extension], *sc.reforms]
    for name in names:
        try:
            doc = load_policy(name)
        except Exception:  # noqa: BLE001 - references are a courtesy; the replay already matched
            continue
        for meas in doc.measures or []:
            if meas.id and meas.reference:
                refs[meas.id] = meas.reference
    return refs


def throttled_days(days: list[dict[str, Any]], at_start: bool, start: dt.date,
                   end: dt.date) -> int:
    """Days of the period ``start`` .. ``end`` on which a story's subject had its connection
    throttled: from each start (or ``start``, when it was throttled already) to its end, the
    end's day not included (as the daily stock counts), or through ``end`` if still throttled.
    ``days`` are a story's days (``explain``'s or the explorer's credit file)."""
    since = start if at_start else None
    total = 0
    for d in days:
        for e in d["events"]:
            if e["type"] != "restriction":
                continue
            if e["event"] == "start":
                since = dt.date.fromisoformat(d["day"])
            elif since is not None:
                total += (dt.date.fromisoformat(d["day"]) - since).days
                since = None
    if since is not None:
        total += (end - since).days + 1
    return total


def _summary(days: list[dict[str, Any]]) -> dict[str, int]:
    evs = [e for d in days for e in d["events"]]

    def n(pred: Any) -> int:
        return sum(1 for e in evs if pred(e))

    return {
        "acts": n(lambda e: e["type"] == "act"),
        "records": n(lambda e: e["type"] == "record"),
        "false_records": n(lambda e: e["type"] == "record" and not e["true_record"]),
        "points_changes": n(lambda e: e["type"] == "points"),
        "net_points": sum(e["points"] for e in evs if e["type"] == "points"),
        "grade_changes": n(lambda e: e["type"] == "grade"),
        "list_entries": n(lambda e: e["type"] == "list" and e["event"] == "enter"),
        "list_exits": n(lambda e: e["type"] == "list" and e["event"] == "exit"),
        "objections": n(lambda e: e["type"] == "objection"),
        "appeals_won": n(lambda e: e["type"] == "appeal" and e["won"]),
        "requests": n(lambda e: e["type"] == "decision"),
        "denied": n(lambda e: e["type"] == "decision" and e["outcome"] == "denied"),
        "fast_tracked": n(lambda e: e["type"] == "decision" and e["outcome"] == "fast_tracked"),
        "wrongful": n(lambda e: e["type"] == "decision" and e["wrongful"]),
        "reached_through_group": n(lambda e: e["type"] == "decision" and bool(e.get("via"))),
        "throttles_started": n(lambda e: e["type"] == "restriction" and e["event"] == "start"),
        "throttles_ended": n(lambda e: e["type"] == "restriction" and e["event"] == "end"),
    }


def explain(run: str | Path | Run, subject: str | int, *, check: bool = True,
            model: Model | None = None, progress: bool = False) -> dict[str, Any]:
    """The story of one subject (an id or a business's USCC) as a JSON-ready dict.

    Replays the subject's group alone from the seed; with ``check`` and a run that stored a
    ledger, compares the replay with the stored tables (``ledger_check``). ``model`` may be
    passed to explain many subjects of one run without rebuilding it. ``progress=True``
    draws a progress bar of the replayed days (in a terminal or a notebook), saying so while
    the population is rebuilt and the kernels compile."""
    from socialcredit.population import describe

    if progress:
        from socialcredit.run import progress_bar

        with progress_bar(f"explaining subject {subject}") as (bar, note):
            replay = replay_group(run, subject, model=model, progress=bar, notice=note)
    else:
        replay = replay_group(run, subject, model=model)
    m = replay.model
    sid = replay.subject
    story = _Story(replay).run()
    attrs = describe(m.population, sid)
    start = date_of(m.first_day + m.burn_in)
    end = date_of(m.first_day + m.total_days - 1)
    out: dict[str, Any] = {
        "run": str(replay.run.path),
        "policy": m.policy.policy_name,
        "subject_id": sid,
        "kind": attrs["kind"],
        "uscc": attrs.get("uscc"),
        "attributes": attrs,
        "period": {"start": start.isoformat(), "end": end.isoformat(),
                   "burn_in_days": int(m.burn_in)},
        "at_start": story["at_start"],
        "at_end": story["at_end"],
        "summary": _summary(story["days"]),
        "days": story["days"],
    }
    out["summary"]["throttled_days"] = throttled_days(
        story["days"], bool(story["at_start"].get("throttled_since")), start, end)
    out["ledger_check"] = ledger_check(replay) if check else {"status": "not checked",
                                                               "tables": {}}
    return out
