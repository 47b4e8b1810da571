"""A subject's credit file: the ``explain`` story, from the ledger or by replay.

Every credit file is fetched through :func:`credit_file`, which picks its source:

- ``ledger`` — a run that stored its ledger (``--ledger``) holds every record, point change,
  list event, decision and snapshot of the subject; the story is read from those tables
  through the run's subject index (milliseconds, whatever the size of the run);
- ``replay`` — any run, ledger or not: :func:`socialcredit.analysis.explain.explain` replays
  the subject's group alone from the seed, which also tells the acts (the truth), objections,
  appeals, overrides and through whom a measure reached the subject. It runs numba's
  parallel functions, so replays are serialised (DESIGN 9).

Both give the same shape — the JSON of ``socialcredit explain RUN SUBJECT --json``:
``subject_id``, ``kind``, ``uscc``, ``attributes``, ``period``, ``at_start``, ``at_end``,
``summary`` and ``days`` (each a date and its events, in the order of the day's phases) —
plus ``source`` and ``run`` (the run's id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from socialcredit.analysis.explain import throttled_days
from socialcredit.errors import UserError
from socialcredit.web.catalog import (
    NUMBA_LOCK,
    NotFound,
    RunHandle,
    Unavailable,
    prepare_numba,
)

#: Rows read from each table for one subject; a longer history is cut (``truncated``).
MAX_ROWS = 5000

#: The order of event types within a day (the phases of DESIGN 3).
PHASE = {"act": 0, "record": 1, "objection": 2, "appeal": 2, "repayment": 2, "points": 3,
         "grade": 4, "override": 4, "list": 5, "decision": 6, "restriction": 6, "income": 7}

ReplayFn = Callable[[RunHandle, int], dict[str, Any]]


def _analysis_explain(handle: RunHandle, subject: int) -> dict[str, Any]:
    from socialcredit.analysis.explain import explain

    return explain(handle.run, subject, check=False, model=handle.model())


#: The replay behind ``source=replay``; ``socialcredit.analysis.explain.explain`` (point it
#: elsewhere in tests).
replay_story: ReplayFn = _analysis_explain


def credit_file(handle: RunHandle, subject: int, source: str = "auto") -> dict[str, Any]:
    """The credit file of ``subject`` (an id already checked by ``RunHandle.subject``).

    ``source``: ``ledger``, ``replay`` or ``auto`` (the ledger when the run has one)."""
    if source not in ("auto", "ledger", "replay"):
        raise NotFound(f"there is no source {source!r}: use auto, ledger or replay")
    if source == "auto":
        source = "ledger" if handle.has_ledger else "replay"
    if source == "ledger":
        handle.require_ledger("the credit file from the ledger")
        story = ledger_story(handle, subject)
    else:
        story = replayed_story(handle, subject)
    story["run"] = handle.id
    story["source"] = source
    story["ledger"] = bool(handle.has_ledger)  # whether the file can also be read from it
    story["tables"] = handle.run.tables()  # what this subject's rows can be downloaded from
    return story


def replayed_story(handle: RunHandle, subject: int) -> dict[str, Any]:
    """The story replayed from the seed (``socialcredit.analysis.explain``), one at a time."""
    try:
        prepare_numba()
        with NUMBA_LOCK:
            story = replay_story(handle, subject)
    except ImportError:
        raise Unavailable("this version of socialcredit cannot replay a subject") from None
    except UserError as err:
        raise Unavailable(err.message) from None
    story = dict(story)
    story.pop("run", None)
    return story


# --- the story from the ledger -----------------------------------------------------------------


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _lists_of(bits: int | None, names: list[str]) -> list[str]:
    if not bits:
        return []
    return [n for k, n in enumerate(names) if (int(bits) >> k) & 1]


def ledger_story(handle: RunHandle, subject: int) -> dict[str, Any]:
    """The story of a subject from the run's tables (records, ledger, list events,
    decisions, snapshots), in the shape of ``explain``."""
    index = handle.index()
    cur = index.cursor()
    try:
        rows = {name: index.rows(cur, name, subject, MAX_ROWS + 1) for name in index.tables}
    finally:
        cur.close()
    truncated = [name for name, r in rows.items() if len(r) > MAX_ROWS]
    for name in truncated:
        rows[name] = rows[name][:MAX_ROWS]
    list_names: list[str] = list((handle.manifest.get("policy") or {}).get("lists") or [])
    rule_refs = handle.rule_references
    measure_refs = handle.measure_references
    events: list[tuple[str, int, int, dict[str, Any]]] = []  # (day, phase, n, event)

    def add(day: Any, event: dict[str, Any]) -> None:
        events.append((_day(day), PHASE.get(event["type"], 9), len(events), event))

    for r in rows.get("records", []):
        add(r["day"], {"type": "record", "act": r.get("act"), "channel": r.get("channel"),
                       "true_record": bool(r.get("true_record")),
                       "delayed": bool(r.get("delayed")),
                       "corroborating": bool(r.get("corroborating"))})
    for r in rows.get("ledger", []):
        rule = str(r.get("rule"))
        add(r["day"], {"type": "points", "rule": rule, "reference": rule_refs.get(rule, ""),
                       "points": r.get("points"), "score": r.get("score"),
                       "false_record": bool(r.get("false_record"))})
    for r in rows.get("list_events", []):
        reason = str(r.get("reason"))
        add(r["day"], {"type": "list", "list": r.get("list"), "event": r.get("event"),
                       "reason": reason, "reference": rule_refs.get(reason, ""),
                       "false_caused": bool(r.get("false_caused"))})
    for r in rows.get("decisions", []):
        measure = r.get("measure")
        add(r["day"], {"type": "decision", "service": r.get("service"),
                       "outcome": r.get("outcome"), "measure": measure,
                       "reference": measure_refs.get(str(measure), "") if measure else "",
                       "wrongful": bool(r.get("wrongful")),
                       "throttled": bool(r.get("throttled"))})
    since: str | None = None
    throttled_at_start = False
    for r in rows.get("restrictions", []):
        day = _day(r["day"])
        event: dict[str, Any] = {"type": "restriction", "service": r.get("service"),
                                 "event": r.get("event"), "measure": r.get("measure"),
                                 "wrongful": bool(r.get("wrongful"))}
        if r.get("event") == "start":
            since = day
        else:
            if since is None:
                throttled_at_start = True
            else:
                event["since"] = since
                event["days"] = (dt.date.fromisoformat(day) - dt.date.fromisoformat(since)).days
            since = None
        add(r["day"], event)
    snaps = rows.get("snapshots", [])
    previous: dict[str, Any] | None = None
    for s in snaps:
        if previous is not None and s.get("grade") != previous.get("grade"):
            add(s["day"], {"type": "grade", "from": previous.get("grade"), "to": s.get("grade"),
                           "as_of": "snapshot"})
        previous = s
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    days: list[dict[str, Any]] = []
    for day, _, _, event in events:
        if not days or days[-1]["day"] != day:
            days.append({"day": day, "events": []})
        days[-1]["events"].append(event)

    at_start, at_end = _ends(rows, snaps, list_names)
    # a throttle whose first event is its end was begun before the period; its start day is
    # not in the ledger (the replay tells it)
    at_start["throttled_since"] = "before the period" if throttled_at_start else None
    at_end["throttled_since"] = since
    kind = "citizen" if subject < handle.n_citizens else "business"
    return {
        "subject_id": subject,
        "kind": kind,
        "uscc": handle.uscc(subject),
        "attributes": attributes(handle, subject),
        "period": {"start": handle.start.isoformat(), "end": handle.end.isoformat(),
                   "burn_in_days": int(handle.manifest["calendar"].get("burn_in_days", 0))},
        "at_start": at_start,
        "at_end": at_end,
        "summary": {**summary(days), "throttled_days": throttled_days(
            days, throttled_at_start, handle.start, handle.end)},
        "days": days,
        "scores": [{"day": _day(s["day"]), "score": s.get("score"), "grade": s.get("grade"),
                    "lists": _lists_of(s.get("lists"), list_names)} for s in snaps],
        "truncated": truncated,
        "not_in_ledger": ["acts (the truth)", "objections", "appeals lost",
                          "grade overrides", "through whom a measure reached the subject",
                          "a throttle begun before the period that lasts through it"],
    }


def _ends(rows: dict[str, list[dict[str, Any]]], snaps: list[dict[str, Any]],
          list_names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The subject's score, grade and lists at the start and at the end of the period.

    Lists at the start: a list whose first event is an exit or extension was held already;
    a list with no event keeps the snapshots' flag. The score at the start is the first
    point change's score before it; the grade at the start is the first snapshot's."""
    first = snaps[0] if snaps else {}
    last = snaps[-1] if snaps else {}
    ledger = rows.get("ledger", [])
    events = rows.get("list_events", [])
    first_event: dict[str, dict[str, Any]] = {}
    for e in events:
        first_event.setdefault(str(e.get("list")), e)
    start_lists: list[dict[str, Any]] = []
    flagged = set(_lists_of(first.get("lists"), list_names))
    false_flagged = set(_lists_of(first.get("false_lists"), list_names))
    for name in list_names:
        ev = first_event.get(name)
        held = (ev.get("event") != "enter") if ev is not None else name in flagged
        if held:
            caused = bool(ev.get("false_caused")) if ev is not None else name in false_flagged
            start_lists.append({"list": name, "false_caused": caused})
    if ledger:
        score0: int | None = int(ledger[0]["score"]) - int(ledger[0]["points"])
    else:
        score0 = first.get("score") if first else None
    end_flags = set(_lists_of(last.get("lists"), list_names))
    end_false = set(_lists_of(last.get("false_lists"), list_names))
    # the ledger has no grade events: the grade at the start is the first snapshot's, which
    # is taken at the end of a later day (said with grade_as_of)
    at_start = {"score": score0, "grade": first.get("grade"), "lists": start_lists,
                "grade_as_of": _day(first["day"]) if first else None}
    at_end = {"score": last.get("score") if last else (ledger[-1]["score"] if ledger else None),
              "grade": last.get("grade"),
              "lists": [{"list": n, "false_caused": n in end_false} for n in list_names
                        if n in end_flags]}
    return at_start, at_end


def summary(days: list[dict[str, Any]]) -> dict[str, int]:
    """Counts of a story's events (the keys of ``explain``'s summary that the ledger holds)."""
    evs = [e for d in days for e in d["events"]]

    def n(kind: str, **match: Any) -> int:
        return sum(1 for e in evs if e["type"] == kind
                   and all(e.get(k) == v for k, v in match.items()))

    return {
        "records": n("record"),
        "false_records": n("record", true_record=False),
        "points_changes": n("points"),
        "net_points": sum(int(e.get("points") or 0) for e in evs if e["type"] == "points"),
        "grade_changes": n("grade"),
        "list_entries": n("list", event="enter"),
        "list_exits": n("list", event="exit"),
        "repairs": n("list", event="exit", reason="credit repair"),
        "appeals_won": n("points", rule="appeal reversal"),
        "requests": n("decision"),
        "denied": n("decision", outcome="denied"),
        "fast_tracked": n("decision", outcome="fast_tracked"),
        "wrongful": n("decision", wrongful=True),
        "throttles_started": n("restriction", event="start"),
        "throttles_ended": n("restriction", event="end"),
    }


def attributes(handle: RunHandle, subject: int) -> dict[str, Any]:
    """A subject's attributes (``socialcredit.population.describe``), or the little the
    manifest tells when the population cannot be rebuilt."""
    pop = handle.population(timeout=0.5)
    if pop is not None:
        from socialcredit.population import describe

        try:
            return describe(pop, subject)
        except (UserError, IndexError, ValueError):
            pass
    kind = "citizen" if subject < handle.n_citizens else "business"
    region = handle.region_of(subject)
    names = {r["id"]: r["name"] for r in handle.regions}
    return {"subject_id": subject, "kind": kind, "region": region,
            "region_name": names.get(region, region)}
