"""Metrics of a finished run: who is punished, how fast, how fairly, how often by mistake.

Every function takes a run (a path or a :class:`~socialcredit.store.Run`) and returns plain,
JSON-ready Python values; :func:`all_metrics` gathers them. Two sources:

- the ``daily`` table (every run): counts per day, region, kind and cell (income band and
  urban/rural for citizens, size band for businesses), the census in the manifest;
- the per-subject tables of a ``--ledger`` run (``snapshots``, ``records``, ``ledger``,
  ``list_events``, ``decisions``, ``restrictions``): score distributions, the education and age bands, time on
  lists, the false records behind wrongful decisions, the rules that moved most points.

Where a metric needs the ledger and the run has none, it says so (``available: false`` and a
``note``) instead of guessing. Rates are computed over subject-days, so a "share on a list"
is the share of an average day of the reported period.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from socialcredit.analysis.common import (
    behaviour_tables,
    calendar_of,
    day_number,
    has_ledger,
    open_run,
    policy_tables,
    rule_references,
    scenario_of,
)

if TYPE_CHECKING:
    from socialcredit.store import Run

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
NO_LEDGER = "needs a run with --ledger (per-subject tables)"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(run: Run, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = run.sql(query, params).to_pylist()
    return rows


def _ratio(a: float, b: float) -> float | None:
    return float(a) / float(b) if b else None


def _has_snapshots(run: Run) -> bool:
    return run.has("snapshots") and int((run.manifest.get("row_counts") or {})
                                        .get("snapshots", 1)) > 0


# --- scores ---------------------------------------------------------------------------------


def gini(values: np.ndarray | list[float]) -> float:
    """The Gini coefficient of values (shifted to start at zero when some are negative)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n == 0:
        return 0.0
    if x[0] < 0:
        x = x - x[0]
    total = x.sum()
    if total == 0:
        return 0.0
    i = np.arange(1, n + 1, dtype=np.float64)
    return float((2.0 * (i * x).sum()) / (n * total) - (n + 1.0) / n)


def score_inequality(run: str | Path | Run) -> dict[str, Any]:
    """Gini and quantiles of the scores of scored subjects on the last snapshot day, for all
    and by region and kind."""
    run = open_run(run)
    if not _has_snapshots(run):
        return {"available": False, "note": NO_LEDGER}
    last = _rows(run, "SELECT max(day) AS d FROM snapshots")[0]["d"]
    tab = run.sql("SELECT region, kind, score FROM snapshots WHERE day = ? AND grade <> 'none'",
                  [last])
    score = np.asarray(tab["score"].to_numpy(zero_copy_only=False), dtype=np.float64)
    region = np.asarray(tab["region"].to_pylist())
    kind = np.asarray(tab["kind"].to_pylist())

    def describe(sel: np.ndarray) -> dict[str, Any]:
        v = score[sel]
        if v.size == 0:
            return {"n": 0}
        q = np.quantile(v, QUANTILES)
        return {"n": int(v.size), "mean": float(v.mean()), "gini": gini(v),
                **{f"p{int(p * 100)}": float(x) for p, x in zip(QUANTILES, q, strict=True)}}

    groups = []
    for k in sorted(set(kind.tolist())):
        groups.append({"region": "all", "kind": k, **describe(kind == k)})
        for r in sorted(set(region[kind == k].tolist())):
            groups.append({"region": r, "kind": k, **describe((kind == k) & (region == r))})
    return {"available": True, "day": last.isoformat(), "groups": groups}


def score_distribution(run: str | Path | Run) -> list[dict[str, Any]]:
    """Quantiles of scored subjects' scores on every snapshot day, by region and kind."""
    run = open_run(run)
    if not _has_snapshots(run):
        return []
    qs = ", ".join(f"quantile_cont(score, {p}) AS p{int(p * 100)}" for p in QUANTILES)
    return _rows(run, f"""
        SELECT day, region, kind, count(*) AS n, avg(score) AS mean, {qs}
        FROM snapshots WHERE grade <> 'none' GROUP BY ALL ORDER BY day, region, kind""")


def mean_scores(run: str | Path | Run) -> list[dict[str, Any]]:
    """The mean score of scored subjects per day, region and kind (every run)."""
    run = open_run(run)
    return _rows(run, """
        SELECT day, region, kind, sum(score_sum) / sum(scored) AS mean, sum(scored) AS scored
        FROM daily GROUP BY ALL HAVING sum(scored) > 0 ORDER BY day, region, kind""")


def grade_shares(run: str | Path | Run) -> list[dict[str, Any]]:
    """Each grade's share of the graded subjects per day, region and kind."""
    run = open_run(run)
    grades = (run.manifest.get("policy") or {}).get("grades") or {}
    nmax = max([len(v.get(k) or []) for v in grades.values() for k in ("citizen", "business")]
               or [0])
    if nmax == 0:
        return []
    cols = ", ".join(f"sum({_q(f'grade_{g}')}) AS g{g}" for g in range(nmax))
    out = []
    for row in _rows(run, f"SELECT day, region, kind, {cols} FROM daily GROUP BY ALL "
                          "ORDER BY day, region, kind"):
        names = (grades.get(row["region"]) or {}).get(row["kind"]) or []
        total = sum(int(row[f"g{g}"] or 0) for g in range(len(names)))
        if not names or not total:
            continue
        for g, name in enumerate(names):
            out.append({"day": row["day"], "region": row["region"], "kind": row["kind"],
                        "grade": name, "share": int(row[f"g{g}"] or 0) / total})
    return out


# --- lists and decisions ----------------------------------------------------------------------


def _lists(run: Run) -> list[str]:
    return list((run.manifest.get("policy") or {}).get("lists") or [])


def list_series(run: str | Path | Run) -> dict[str, list[dict[str, Any]]]:
    """List sizes per day (``stock``) and entries, extensions and exits per week (``flows``)."""
    run = open_run(run)
    lists = _lists(run)
    if not lists:
        return {"stock": [], "flows": []}
    stock_cols = ", ".join(f"sum({_q('listed_' + n)}) AS {_q(n)}" for n in lists)
    stock = []
    for row in _rows(run, f"SELECT day, {stock_cols} FROM daily GROUP BY day ORDER BY day"):
        for n in lists:
            stock.append({"day": row["day"], "list": n, "listed": int(row[n] or 0)})
    flow_cols = ", ".join(
        f"sum({_q(f'{ev}_{n}')}) AS {_q(f'{ev}:{n}')}" for n in lists
        for ev in ("enter", "extend", "exit"))
    flows = []
    for row in _rows(run, f"SELECT date_trunc('week', day) AS week, {flow_cols} FROM daily "
                          "GROUP BY 1 ORDER BY 1"):
        for n in lists:
            flows.append({"week": row["week"], "list": n,
                          "entries": int(row[f"enter:{n}"] or 0),
                          "extensions": int(row[f"extend:{n}"] or 0),
                          "exits": int(row[f"exit:{n}"] or 0)})
    return {"stock": stock, "flows": flows}


def decisions_by_service(run: str | Path | Run) -> list[dict[str, Any]]:
    """Requests decided per service: granted, denied, fast-tracked, wrongful (the census)."""
    run = open_run(run)
    census = run.manifest.get("census") or {}
    dec = census.get("decisions") or {}
    wrong = census.get("wrongful") or {}
    services = list((run.manifest.get("policy") or {}).get("services") or [])
    out = []
    for s in services:
        row = {"service": s, "granted": int(dec.get(f"granted_{s}", 0)),
               "denied": int(dec.get(f"denied_{s}", 0)),
               "fast_tracked": int(dec.get(f"fast_tracked_{s}", 0)),
               "wrongful": int(wrong.get(s, 0))}
        row["requests"] = row["granted"] + row["denied"] + row["fast_tracked"]
        if row["requests"]:
            out.append(row)
    return out


# --- regions side by side ---------------------------------------------------------------------


def _per_1000(count: float, base: float) -> float | None:
    return 1000.0 * float(count) / float(base) if base else None


def region_comparison(run: str | Path | Run) -> dict[str, Any]:
    """The regions of a run side by side (every run: the ``daily`` table and the manifest).

    ``regions``: one row per region in the scenario's order, with its policy layer (the
    extension, or None for the baseline alone), citizens, businesses, the share of citizens
    scored and their mean score on the last reported day, requests decided, and denials,
    fast-tracks and wrongful denials per 1,000 requests. ``lists``: for each list, the mean
    number on it per 1,000 subjects of its kind on a reported day, and its entries, by
    region. ``measures``: for each measure that fired, how often per 1,000 subjects of the
    requesting kind, by region (a regional perk shows only where its extension applies)."""
    run = open_run(run)
    pop = run.manifest.get("population") or {}
    regions = [r for r in pop.get("regions") or [] if r.get("id") is not None]
    names = [str(r["id"]) for r in regions]
    lists = _lists(run)
    list_kind, service_kind = _kinds_of_targets(run)
    pol = run.manifest.get("policy") or {}
    services = list(pol.get("services") or [])
    measures = list(pol.get("measures") or [])
    _, days, _ = calendar_of(run)
    sums = ["sum(requests) AS requests"]
    sums += [f"sum({_q(f'{o}_{s}')}) AS {_q(f'{o}:{s}')}" for s in services
             for o in ("denied", "fast_tracked")]
    sums += [f"sum({_q('wrongful_' + s)}) AS {_q('wrongful:' + s)}" for s in services]
    sums += [f"sum({_q('listed_' + n)}) AS {_q('listed:' + n)}" for n in lists]
    sums += [f"sum({_q('enter_' + n)}) AS {_q('enter:' + n)}" for n in lists]
    sums += [f"sum({_q('measure_' + m)}) AS {_q('measure:' + m)}" for m in measures]
    by: dict[tuple[str, str], dict[str, Any]] = {
        (str(row["region"]), str(row["kind"])): row
        for row in _rows(run, f"SELECT region, kind, {', '.join(sums)} FROM daily GROUP BY ALL")}
    last = {(str(r["region"]), str(r["kind"])): r for r in _rows(run, """
        SELECT region, kind, sum(scored) AS scored, sum(score_sum) AS score_sum FROM daily
        WHERE day = (SELECT max(day) FROM daily) GROUP BY ALL""")}

    def get(region: str, kind: str, key: str) -> int:
        return int((by.get((region, kind)) or {}).get(key) or 0)

    def subjects(region: dict[str, Any], kind: str) -> int:
        return int(region.get("citizens" if kind == "citizen" else "businesses") or 0)

    rows = []
    for r in regions:
        rid = str(r["id"])
        requests = get(rid, "citizen", "requests") + get(rid, "business", "requests")

        def total(prefix: str, rid: str = rid) -> int:
            return sum(get(rid, k, f"{prefix}:{s}") for s in services for k in ("citizen", "business"))

        scored = int((last.get((rid, "citizen")) or {}).get("scored") or 0)
        score_sum = int((last.get((rid, "citizen")) or {}).get("score_sum") or 0)
        rows.append({
            "region": rid, "name": r.get("name"), "extension": r.get("extension"),
            "citizens": subjects(r, "citizen"), "businesses": subjects(r, "business"),
            "scored_share": _ratio(scored, subjects(r, "citizen")),
            "mean_score": _ratio(score_sum, scored),
            "requests": requests,
            "denied_per_1000": _per_1000(total("denied"), requests),
            "fast_tracked_per_1000": _per_1000(total("fast_tracked"), requests),
            "wrongful_per_1000": _per_1000(total("wrongful"), requests),
        })
    list_rows = []
    for n in lists:
        kind = list_kind.get(n, "citizen")
        list_rows.append({"list": n, "kind": kind, "by_region": {
            str(r["id"]): {
                "listed_per_1000": _per_1000(get(str(r["id"]), kind, f"listed:{n}") / max(days, 1),
                                             subjects(r, kind)),
                "entries": get(str(r["id"]), kind, f"enter:{n}")}
            for r in regions}})
    measure_rows = []
    tables = policy_tables(run)
    service_of = {m: tables.service_names[int(s)]
                  for m, s in zip(tables.measure_names, tables.measure_service, strict=True)}
    for m in measures:
        counts = {rid: get(rid, "citizen", f"measure:{m}") + get(rid, "business", f"measure:{m}")
                  for rid in names}
        if not any(counts.values()):
            continue
        kind = service_kind.get(service_of.get(m, ""), "citizen")
        measure_rows.append({"measure": m, "kind": kind, "by_region": {
            str(r["id"]): {"fired": counts[str(r["id"])],
                           "per_1000": _per_1000(counts[str(r["id"])], subjects(r, kind))}
            for r in regions}})
    return {"regions": rows, "lists": list_rows, "measures": measure_rows}


# --- fairness ---------------------------------------------------------------------------------


def _band_names() -> dict[str, tuple[str, ...]]:
    from socialcredit.population import AGE_BANDS, EDUCATION_BANDS, INCOME_BANDS, SIZE_BANDS

    return {"income": INCOME_BANDS, "education": EDUCATION_BANDS, "age": AGE_BANDS,
            "size": SIZE_BANDS, "urban": ("rural", "urban")}


def _kinds_of_targets(run: Run) -> tuple[dict[str, str], dict[str, str]]:
    """(list -> subject kind, service -> subject kind)."""
    from socialcredit.catalogue import KINDS, load_catalogue

    pol = policy_tables(run)
    lists = {n: KINDS[int(k)] for n, k in zip(pol.list_names, pol.list_subject_kind, strict=True)}
    services = {s.id: str(s.kind) for s in load_catalogue().services}
    return lists, services


def _disparity_rows(axis: str, kind: str, what: str, target: str, source: str,
                    per_band: dict[int, tuple[float, float]], names: tuple[str, ...],
                    population: dict[int, float]) -> list[dict[str, Any]]:
    num_all = sum(v[0] for v in per_band.values())
    den_all = sum(v[1] for v in per_band.values())
    overall = _ratio(num_all, den_all)
    if not overall:
        return []
    pop_all = sum(population.values())
    out = []
    # every band of the population gets a row, also one with nothing to count (a band
    # that made no request: its rate is unknown, not zero), so the shares add up to one
    for b in sorted(set(per_band) | {k for k, v in population.items() if v > 0}):
        num, den = per_band.get(b, (0.0, 0.0))
        rate = _ratio(num, den)
        out.append({
            "axis": axis, "band": names[b] if 0 <= b < len(names) else str(b), "kind": kind,
            "what": what, "target": target, "count": int(num), "rate": rate,
            "overall": overall, "disparity": (rate / overall) if rate is not None else None,
            "population_share": _ratio(population.get(b, 0.0), pop_all), "source": source,
        })
    return out


def band_disparities(run: str | Path | Run) -> dict[str, Any]:
    """Each band's rate of being on each list and of being denied each service, and its
    disparity ratio against the whole population of the same kind (1.0: no disparity).

    ``what`` is ``list`` (rate: share of subject-days on the list) or ``denied`` (rate:
    share of the band's requests for the service that were denied). Income, urban/rural and
    business size come from ``daily``; education and age from the snapshots of a ledger run.
    """
    run = open_run(run)
    names = _band_names()
    list_kind, svc_kind = _kinds_of_targets(run)
    lists = _lists(run)
    services = [d["service"] for d in decisions_by_service(run)]
    sums = [f"sum({_q('listed_' + n)}) AS {_q('l:' + n)}" for n in lists]
    for s in services:
        for o in ("granted", "denied", "fast_tracked"):
            sums.append(f"sum({_q(f'{o}_{s}')}) AS {_q(f'{o}:{s}')}")
    sums.append("sum(subjects) AS subjects")
    cells = _rows(run, f"SELECT kind, income, urban, size, {', '.join(sums)} FROM daily "
                       "GROUP BY ALL")
    rows: list[dict[str, Any]] = []
    axes = (("income", "citizen", lambda c: c["income"]),
            ("urban", "citizen", lambda c: int(bool(c["urban"]))),
            ("size", "business", lambda c: c["size"]))
    for axis, kind, band_of in axes:
        mine = [c for c in cells if c["kind"] == kind and band_of(c) is not None]
        population: dict[int, float] = {}
        for c in mine:
            population[band_of(c)] = population.get(band_of(c), 0.0) + float(c["subjects"] or 0)
        for n in lists:
            if list_kind.get(n) != kind:
                continue
            per: dict[int, tuple[float, float]] = {}
            for c in mine:
                b = band_of(c)
                a0, d0 = per.get(b, (0.0, 0.0))
                per[b] = (a0 + float(c[f"l:{n}"] or 0), d0 + float(c["subjects"] or 0))
            rows += _disparity_rows(axis, kind, "list", n, "daily", per, names[axis], population)
        for s in services:
            if svc_kind.get(s) != kind:
                continue
            per = {}
            for c in mine:
                b = band_of(c)
                den = sum(float(c[f"{o}:{s}"] or 0) for o in ("granted", "denied", "fast_tracked"))
                a0, d0 = per.get(b, (0.0, 0.0))
                per[b] = (a0 + float(c[f"denied:{s}"] or 0), d0 + den)
            rows += _disparity_rows(axis, kind, "denied", s, "daily", per, names[axis],
                                    population)
    note = None
    if _has_snapshots(run) and run.has("decisions"):
        rows += _snapshot_disparities(run, lists, list_kind, svc_kind, services, names)
    else:
        note = "education and age bands " + NO_LEDGER
    return {"rows": rows, "note": note}


def _snapshot_disparities(run: Run, lists: list[str], list_kind: dict[str, str],
                          svc_kind: dict[str, str], services: list[str],
                          names: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    bits = ", ".join(f"sum((CAST(lists AS INTEGER) >> {j}) & 1) AS {_q('l:' + n)}"
                     for j, n in enumerate(lists))
    snap = _rows(run, f"SELECT education, age, count(*) AS n{', ' + bits if bits else ''} "
                      "FROM snapshots WHERE kind = 'citizen' GROUP BY ALL")
    dec = _rows(run, """
        WITH b AS (SELECT subject_id, any_value(education) AS education, any_value(age) AS age
                   FROM snapshots WHERE kind = 'citizen' GROUP BY subject_id)
        SELECT b.education, b.age, d.service, count(*) AS requests,
               count(*) FILTER (WHERE d.outcome = 'denied') AS denied
        FROM decisions d JOIN b USING (subject_id) GROUP BY ALL""")
    for axis in ("education", "age"):
        population: dict[int, float] = {}
        for c in snap:
            population[c[axis]] = population.get(c[axis], 0.0) + float(c["n"])
        for n in lists:
            if list_kind.get(n) != "citizen":
                continue
            per: dict[int, tuple[float, float]] = {}
            for c in snap:
                a0, d0 = per.get(c[axis], (0.0, 0.0))
                per[c[axis]] = (a0 + float(c[f"l:{n}"] or 0), d0 + float(c["n"]))
            rows += _disparity_rows(axis, "citizen", "list", n, "snapshots", per, names[axis],
                                    population)
        for s in services:
            if svc_kind.get(s) != "citizen":
                continue
            per = {}
            for c in dec:
                if c["service"] != s:
                    continue
                a0, d0 = per.get(c[axis], (0.0, 0.0))
                per[c[axis]] = (a0 + float(c["denied"]), d0 + float(c["requests"]))
            rows += _disparity_rows(axis, "citizen", "denied", s, "decisions", per,
                                    names[axis], population)
    return rows


# --- mistakes ---------------------------------------------------------------------------------


def false_records_by_channel(run: str | Path | Run) -> list[dict[str, Any]]:
    """Records per channel, true and false, and the false share (the census)."""
    run = open_run(run)
    census = run.manifest.get("census") or {}
    t, f = census.get("records_true") or {}, census.get("records_false") or {}
    out = []
    for ch in sorted(set(t) | set(f)):
        tt, ff = int(t.get(ch, 0)), int(f.get(ch, 0))
        if tt + ff:
            out.append({"channel": ch, "true": tt, "false": ff, "false_share": ff / (tt + ff)})
    return sorted(out, key=lambda r: -r["false"])


def wrongful_decisions(run: str | Path | Run) -> dict[str, Any]:
    """Wrongful denials (DESIGN 2.7): the rate among denials, by service, and — with a
    ledger — by the channel of the false record behind them.

    The channel is that of the subject's most recent false record on or before the day of
    the decision; a wrongful denial with no false record of the subject's own in the
    reported days reached it through its group, or rests on a false record made before the
    reported days."""
    run = open_run(run)
    by_service = decisions_by_service(run)
    denied = sum(r["denied"] for r in by_service)
    wrongful = sum(r["wrongful"] for r in by_service)
    out: dict[str, Any] = {
        "denied": denied, "wrongful": wrongful, "rate": _ratio(wrongful, denied),
        "by_service": [{"service": r["service"], "denied": r["denied"],
                        "wrongful": r["wrongful"], "rate": _ratio(r["wrongful"], r["denied"])}
                       for r in by_service if r["denied"]],
        "false_records": false_records_by_channel(run),
    }
    if has_ledger(run):
        out["by_channel"] = _rows(run, """
            SELECT coalesce(r.channel, '(through its group, or earlier)') AS channel,
                   count(*) AS wrongful
            FROM (SELECT subject_id, day FROM decisions WHERE wrongful) d
            ASOF LEFT JOIN (SELECT subject_id, day, channel FROM records WHERE NOT true_record) r
              ON d.subject_id = r.subject_id AND d.day >= r.day
            GROUP BY 1 ORDER BY 2 DESC, 1""")
    else:
        out["by_channel"] = None
        out["note"] = "the channels behind wrongful decisions " + NO_LEDGER
    return out


# --- time on lists ----------------------------------------------------------------------------


def time_to_exit(run: str | Path | Run) -> list[dict[str, Any]]:
    """How long subjects stay on each list.

    With a ledger: every entry in the reported days paired with its exit (days listed:
    median, mean, 90th percentile, by exit reason), and the entries still open at the end.
    Exits of entries made before the reported days are counted apart (their length is
    unknown). Without a ledger: an estimate by Little's law, the mean number listed over the exits per day."""
    run = open_run(run)
    lists = _lists(run)
    if has_ledger(run):
        pairs = _rows(run, """
            WITH e AS (SELECT subject_id, list, event, reason, day,
                              row_number() OVER () AS k
                       FROM list_events WHERE event IN ('enter', 'exit')),
                 p AS (SELECT *, lead(event) OVER w AS next_event, lead(day) OVER w AS next_day,
                              lead(reason) OVER w AS next_reason
                       FROM e WINDOW w AS (PARTITION BY subject_id, list ORDER BY k))
            SELECT list, event, next_reason AS reason, next_event,
                   datediff('day', day, next_day) AS days, lag(event) OVER w2 AS prev_event
            FROM p WINDOW w2 AS (PARTITION BY subject_id, list ORDER BY k)""")
        out = []
        for n in lists:
            mine = [p for p in pairs if p["list"] == n and p["event"] == "enter"]
            earlier = sum(1 for p in pairs if p["list"] == n and p["event"] == "exit"
                          and p["prev_event"] is None)
            if not mine and not earlier:
                continue
            done = np.array([p["days"] for p in mine if p["next_event"] == "exit"], dtype=float)
            row: dict[str, Any] = {"list": n, "method": "ledger", "entries": len(mine),
                                   "exits": int(done.size),
                                   "still_listed": sum(1 for p in mine if p["next_event"] is None),
                                   "exits_of_earlier_entries": earlier}
            if done.size:
                row.update(median_days=float(np.median(done)), mean_days=float(done.mean()),
                           p90_days=float(np.quantile(done, 0.9)))
                reasons: dict[str, int] = {}
                for p in mine:
                    if p["next_event"] == "exit":
                        reasons[p["reason"]] = reasons.get(p["reason"], 0) + 1
                row["by_reason"] = reasons
            out.append(row)
        return out
    _, days, _ = calendar_of(run)
    if not lists:
        return []
    cols = ", ".join(f"sum({_q('listed_' + n)}) AS {_q('l:' + n)}, "
                     f"sum({_q('exit_' + n)}) AS {_q('x:' + n)}, "
                     f"sum({_q('enter_' + n)}) AS {_q('e:' + n)}" for n in lists)
    tot = _rows(run, f"SELECT {cols} FROM daily")[0]
    out = []
    for n in lists:
        exits = float(tot[f"x:{n}"] or 0)
        if not (exits or tot[f"e:{n}"]):
            continue
        mean_listed = float(tot[f"l:{n}"] or 0) / max(1, days)
        out.append({"list": n, "method": "estimate (Little's law)",
                    "entries": int(tot[f"e:{n}"] or 0), "exits": int(exits),
                    "mean_days": (mean_listed / (exits / days)) if exits else None})
    return out


def throttles(run: str | Path | Run) -> dict[str, Any]:
    """Throttled connections (a measure with ``effect: throttle``): subject-days throttled,
    throttles begun and ended, by region, and the subjects throttled each day.

    A subject counts on every day its connection is throttled at the day's end, so the
    daily ``throttled`` column's sum is the subject-days throttled. With a ledger, each
    throttle begun in the reported days is paired with its end (days throttled: median,
    mean, 90th percentile), and the share begun on false records alone (wrongful) is given."""
    run = open_run(run)
    if "throttled" not in run.columns("daily"):
        return {"available": False, "note": "the run predates throttled connections"}
    census = run.manifest.get("census") or {}
    regions = _rows(run, """
        SELECT region, kind, sum(throttled) AS subject_days, sum(subjects) AS all_days,
               sum(throttle_starts) AS started, sum(throttle_ends) AS ended
        FROM daily GROUP BY ALL ORDER BY region, kind""")
    by_region = []
    for r in regions:
        if not (r["subject_days"] or r["started"] or r["ended"]):
            continue
        by_region.append({"region": r["region"], "kind": r["kind"],
                          "subject_days": int(r["subject_days"] or 0),
                          "per_1000_subject_days": _per_1000(float(r["subject_days"] or 0),
                                                             float(r["all_days"] or 0)),
                          "started": int(r["started"] or 0), "ended": int(r["ended"] or 0)})
    out: dict[str, Any] = {
        "available": True,
        "subject_days": int(census.get("throttled_days", sum(r["subject_days"] for r in by_region))),
        "started": int(census.get("throttle_starts", 0)),
        "ended": int(census.get("throttle_ends", 0)),
        "by_region": by_region,
        "series": [],
    }
    if not by_region:
        return out
    last = _rows(run, "SELECT sum(throttled) AS n FROM daily WHERE day = (SELECT max(day) FROM daily)")
    out["throttled_last_day"] = int(last[0]["n"] or 0)
    out["series"] = _rows(run, """SELECT day, region, sum(throttled) AS throttled FROM daily
                                  GROUP BY ALL ORDER BY day, region""")
    if run.has("restrictions"):
        pairs = _rows(run, """
            WITH e AS (SELECT subject_id, event, day, wrongful, row_number() OVER () AS k
                       FROM restrictions),
                 p AS (SELECT *, lead(event) OVER w AS next_event, lead(day) OVER w AS next_day
                       FROM e WINDOW w AS (PARTITION BY subject_id ORDER BY k))
            SELECT next_event, datediff('day', day, next_day) AS days, wrongful
            FROM p WHERE event = 'start'""")
        done = np.array([p["days"] for p in pairs if p["next_event"] == "end"], dtype=float)
        out["ledger"] = {"begun": len(pairs), "ended": int(done.size),
                         "still_throttled": sum(1 for p in pairs if p["next_event"] is None),
                         "wrongful": sum(1 for p in pairs if p["wrongful"])}
        if done.size:
            out["ledger"].update(median_days=float(np.median(done)), mean_days=float(done.mean()),
                                 p90_days=float(np.quantile(done, 0.9)))
    return out


# --- behaviour under pressure -----------------------------------------------------------------


def chilling(run: str | Path | Run) -> dict[str, Any]:
    """Speech acts: how many happened, and how many were expected without the policy's
    feedback on them (deterrence and chilling, DESIGN 2.8).

    The kernel multiplies a speech act's daily chance by a factor f(epoch, region) when the
    policy penalises it; ``expected`` is the actual count divided by that factor, summed
    over days and regions — an unbiased estimate of the acts the same subjects would have
    done unwatched."""
    from socialcredit.catalogue import load_catalogue

    run = open_run(run)
    cat = load_catalogue()
    speech = [a.id for a in cat.acts if a.category == "speech"]
    sc = scenario_of(run)
    switches = {"chilling": bool(sc.feedback.chilling), "deterrence": bool(sc.feedback.deterrence)}
    if not speech:
        return {"acts": [], "feedback": switches}
    pol = policy_tables(run)
    mod = np.asarray(behaviour_tables(run)["act_mod_policy"], dtype=np.float64) / 256.0
    epochs = np.asarray(pol.epoch_start, dtype=np.int64)
    region_ix = {n: i for i, n in enumerate(pol.region_names)}
    act_ix = {n: i for i, n in enumerate(pol.act_names)}
    cols = ", ".join(f"sum({_q('acts_' + a)}) AS {_q(a)}" for a in speech)
    rows = _rows(run, f"SELECT day, region, {cols} FROM daily WHERE kind = 'citizen' "
                      "GROUP BY ALL")
    actual = dict.fromkeys(speech, 0.0)
    expected = dict.fromkeys(speech, 0.0)
    unknown = set()
    for row in rows:
        e = max(0, int(np.searchsorted(epochs, day_number(row["day"]), side="right")) - 1)
        r = region_ix[row["region"]]
        for a in speech:
            n = float(row[a] or 0)
            f = mod[e, r, act_ix[a]]
            actual[a] += n
            if f > 0:
                expected[a] += n / f
            else:
                unknown.add(a)
    out = []
    for a in speech:
        sup = expected[a] - actual[a]
        out.append({"act": a, "actual": int(actual[a]), "expected": float(expected[a]),
                    "suppressed": float(sup), "suppressed_share": _ratio(sup, expected[a]),
                    "complete": a not in unknown})
    return {"acts": out, "feedback": switches}


def compliance(run: str | Path | Run) -> dict[str, Any]:
    """Compliance induced: listed debtors (on lists left by meeting the obligation) who
    repaid, and the part of those repayments that the listing's pressure explains.

    With the compliance feedback on, a listed debtor repays ``compliance_factor`` times as
    fast, so a share 1 - 1/factor of the repayments made while listed is induced."""
    run = open_run(run)
    pol = policy_tables(run)
    sc = scenario_of(run)
    debt_lists = [n for j, n in enumerate(pol.list_names)
                  if pol.list_exit_obligation.size and pol.list_exit_obligation[:, :, j].any()]
    factor = float(sc.behaviour.compliance_factor) if sc.feedback.compliance else 1.0
    induced_share = max(0.0, 1.0 - 1.0 / factor) if factor > 0 else 0.0
    out: dict[str, Any] = {"lists": debt_lists, "compliance_factor": factor,
                           "induced_share_of_repayments": induced_share}
    if not debt_lists:
        return {**out, "entered": 0, "repaid": 0, "share": None, "induced": 0.0}
    if has_ledger(run):
        marks = ", ".join("?" for _ in debt_lists)
        row = _rows(run, f"""
            WITH e AS (SELECT DISTINCT subject_id, list FROM list_events
                       WHERE event = 'enter' AND list IN ({marks})),
                 x AS (SELECT DISTINCT subject_id, list FROM list_events
                       WHERE event = 'exit' AND reason = 'obligation met' AND list IN ({marks}))
            SELECT (SELECT count(*) FROM e) AS entered,
                   (SELECT count(*) FROM e JOIN x USING (subject_id, list)) AS repaid""",
                    [*debt_lists, *debt_lists])[0]
        entered, repaid, method = int(row["entered"]), int(row["repaid"]), "ledger"
    else:
        cols = " + ".join(f"sum({_q('enter_' + n)})" for n in debt_lists)
        row = _rows(run, f"SELECT {cols} AS entered, sum(exits_obligation) AS repaid FROM daily")[0]
        entered, repaid = int(row["entered"] or 0), int(row["repaid"] or 0)
        method = "daily (entries and exits by meeting the obligation, not the same cohort)"
    return {**out, "method": method, "entered": entered, "repaid": repaid,
            "share": _ratio(repaid, entered), "induced": repaid * induced_share}


# --- rules ------------------------------------------------------------------------------------


def top_rules(run: str | Path | Run, n: int = 15) -> list[dict[str, Any]]:
    """The rules that moved most points (sum of |points| as applied), with their references."""
    run = open_run(run)
    if not run.has("ledger"):
        return []
    refs = rule_references(run)
    rows = _rows(run, """
        SELECT rule, count(*) AS changes, count(DISTINCT subject_id) AS subjects,
               sum(abs(points)) AS moved, sum(points) AS net,
               count(*) FILTER (WHERE false_record) AS from_false_records
        FROM ledger WHERE points <> 0 GROUP BY rule ORDER BY moved DESC, rule""")
    # expiry and appeal reversals are mechanisms, not rules of the policy
    rows = [r for r in rows if r["rule"] in refs][:n]
    for r in rows:
        r["moved"] = int(r["moved"])
        r["net"] = int(r["net"])
        r["reference"] = refs.get(r["rule"], "")
    return rows


# --- everything -------------------------------------------------------------------------------


def all_metrics(run: str | Path | Run) -> dict[str, Any]:
    """Every metric of the issue, JSON-ready (dates as ISO strings)."""
    run = open_run(run)
    start, days, burn = calendar_of(run)
    out = {
        "run": str(run.path),
        "period": {"start": start.isoformat(),
                   "end": (start + dt.timedelta(days=days - 1)).isoformat(),
                   "burn_in_days": burn},
        "ledger": has_ledger(run),
        "scores": score_inequality(run),
        "disparities": band_disparities(run),
        "wrongful": wrongful_decisions(run),
        "time_to_exit": time_to_exit(run),
        "chilling": chilling(run),
        "compliance": compliance(run),
        "top_rules": top_rules(run),
        "decisions": decisions_by_service(run),
        "throttles": throttles(run),
    }
    return _iso(out)


def _iso(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _iso(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_iso(x) for x in v]
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    return v
