"""What the explorer's pages show, as JSON: the list of runs, a run's overview charts, who is
on a list, a policy resolved for a region and date, and two runs compared.

Every query goes through DuckDB over the run's Parquet files (the views of ``run.duckdb``,
or ``read_parquet`` over the run's own files for a comparison of two runs). Charts are Plotly
figures as plain JSON (``{"data": [...], "layout": {...}}``), drawn in the browser by the
Plotly.js that ships with the ``plotly`` package.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from socialcredit.errors import UserError
from socialcredit.store import quote_ident, quote_literal
from socialcredit.web.catalog import NotFound, RunHandle, Unavailable

if TYPE_CHECKING:
    import duckdb

#: Seconds a query may run before it is interrupted (the request then gets a 503).
QUERY_SECONDS = 10.0
#: The largest page of a list.
MAX_PAGE_SIZE = 200

OUTCOMES = ("granted", "denied", "fast_tracked")
INCOME = ("low", "lower_middle", "upper_middle", "high")
SIZE = ("micro", "small", "medium", "large")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


class QueryTimeout(Exception):
    """A query ran past its time limit and was interrupted."""


@contextlib.contextmanager
def bounded(cursor: duckdb.DuckDBPyConnection,
            seconds: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run queries on ``cursor`` for at most ``seconds`` (then interrupt them), and close it."""
    import duckdb

    limit = QUERY_SECONDS if seconds is None else seconds
    timer = threading.Timer(limit, cursor.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield cursor
    except duckdb.InterruptException:
        raise QueryTimeout(f"the query took longer than {limit:g} s and was stopped") from None
    finally:
        timer.cancel()
        cursor.close()


def fetch(cur: duckdb.DuckDBPyConnection, query: str,
          params: list[Any] | None = None) -> list[dict[str, Any]]:
    rel = cur.execute(query, params or [])
    names = [d[0] for d in rel.description]
    return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]


# --- groups of subjects ------------------------------------------------------------------------

#: The groups (bands) a page can filter by: name -> (label, condition on ``daily`` or
#: ``snapshots`` columns).
GROUPS: dict[str, tuple[str, str]] = {
    "all": ("everyone", "TRUE"),
    "citizen": ("citizens", "kind = 'citizen'"),
    "business": ("businesses", "kind = 'business'"),
    **{f"income:{k}": (f"citizens, income {n.replace('_', ' ')}",
                       f"kind = 'citizen' AND income = {k}") for k, n in enumerate(INCOME)},
    "urban": ("citizens, urban", "kind = 'citizen' AND urban"),
    "rural": ("citizens, rural", "kind = 'citizen' AND NOT urban"),
    **{f"size:{k}": (f"businesses, {n}", f"kind = 'business' AND size = {k}")
       for k, n in enumerate(SIZE)},
}


def group_condition(group: str | None) -> tuple[str, str]:
    """(name, SQL condition) of a group; NotFound for an unknown one."""
    name = group or "all"
    if name not in GROUPS:
        raise NotFound(f"there is no group {name!r}: use one of {', '.join(GROUPS)}")
    return name, GROUPS[name][1]


def region_condition(handle: RunHandle, region: str | None) -> tuple[str | None, str]:
    reg = handle.region_index(region)
    if reg is None:
        return None, "TRUE"
    return str(reg["id"]), f"region = {quote_literal(str(reg['id']))}"


def subject_range_condition(handle: RunHandle, region: str | None, kind: str | None) -> str:
    """A condition on ``subject_id`` for a region and a kind (ids are contiguous ranges)."""
    parts = []
    for reg in handle.regions:
        if region is not None and reg["id"] != region:
            continue
        if kind in (None, "citizen"):
            parts.append(f"subject_id BETWEEN {reg['c_lo']} AND {reg['c_hi'] - 1}")
        if kind in (None, "business"):
            parts.append(f"subject_id BETWEEN {reg['b_lo']} AND {reg['b_hi'] - 1}")
    return "(" + (" OR ".join(parts) or "FALSE") + ")"


# --- the runs ----------------------------------------------------------------------------------


def run_entry(handle: RunHandle) -> dict[str, Any]:
    """One run in the list of runs: what was run, when, on whom, under which policy."""
    m = handle.manifest
    sc = m.get("scenario") or {}
    pol = m.get("policy") or {}
    return {
        "id": handle.id,
        "scenario": sc.get("name"),
        "description": sc.get("description"),
        "created": m.get("created"),
        "start": handle.start.isoformat(),
        "end": handle.end.isoformat(),
        "days": handle.days,
        "citizens": handle.n_citizens,
        "businesses": handle.n_businesses,
        "regions": [r["id"] for r in handle.regions],
        "policy": pol.get("name"),
        "reforms": list(pol.get("reforms") or []),
        "seed": m.get("seed"),
        "ledger": handle.has_ledger,
        "headline": handle.summary,
    }


def run_detail(handle: RunHandle) -> dict[str, Any]:
    """A run's manifest and headline figures."""
    out = run_entry(handle)
    out["manifest"] = handle.manifest
    out["tables"] = handle.run.tables()
    out["snapshot_days"] = [d.isoformat() for d in handle.snapshot_days]
    out["lists"] = list((handle.manifest.get("policy") or {}).get("lists") or [])
    out["groups"] = {k: v[0] for k, v in GROUPS.items()}
    return out


# --- the overview ------------------------------------------------------------------------------


def _daily_columns(handle: RunHandle) -> list[str]:
    cols: list[str] | None = getattr(handle, "_daily_columns", None)
    if cols is None:
        cols = handle.run.columns("daily")
        handle._daily_columns = cols  # type: ignore[attr-defined]
    return cols


def _sum(cols: list[str]) -> str:
    return " + ".join(f"coalesce({quote_ident(c)}, 0)" for c in cols) if cols else "0"


def _figure(data: list[dict[str, Any]], title: str, **layout: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 48, "b": 60},
        "template": "plotly_white",
        "height": 400,
    }
    for axis in ("xaxis", "yaxis"):
        layout[axis] = {"automargin": True, **layout.get(axis, {})}
    base.update(layout)
    return {"data": data, "layout": base}


def overview(handle: RunHandle, region: str | None = None, group: str | None = None,
             start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """The run's charts, filtered by region, group and date range."""
    region_id, where_region = region_condition(handle, region)
    group_name, where_group = group_condition(group)
    d0 = handle.date(start, handle.start)
    d1 = handle.date(end, handle.end)
    if d1 < d0:
        raise NotFound(f"the date range {d0} to {d1} of the run {handle.id} is empty")
    where = f"day BETWEEN ? AND ? AND {where_region} AND {where_group}"
    params: list[Any] = [d0, d1]
    cols = _daily_columns(handle)
    pol = handle.manifest.get("policy") or {}
    lists = [n for n in pol.get("lists") or [] if f"listed_{n}" in cols]
    services = [s for s in pol.get("services") or []
                if any(f"{o}_{s}" in cols for o in OUTCOMES)]
    figures: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    with bounded(handle.run.cursor()) as cur:
        figures["scores"] = _scores(handle, cur, region_id, where_region, where_group, d0, d1,
                                    notes)
        figures["grades"] = _grades(handle, cur, region_id, group_name, where, params, cols)
        figures["lists"] = _lists(cur, lists, where, params)
        figures["decisions"] = _decisions(cur, services, cols, where, params)
        figures["throttled"] = _throttled(cur, cols, where, params)
        figures["wrongful"] = _wrongful(handle, cur, region_id, group_name, services, cols,
                                        where, params, d0, d1, notes)
        figures["disparity"], disparity = _disparity(cur, lists, services, cols,
                                                     f"day BETWEEN ? AND ? AND {where_region}",
                                                     params, d1)
    return {
        "run": handle.id,
        "filters": {"region": region_id, "group": group_name, "start": d0.isoformat(),
                    "end": d1.isoformat()},
        "regions": [{"id": r["id"], "name": r["name"]} for r in handle.regions],
        "groups": {k: v[0] for k, v in GROUPS.items()},
        "figures": figures,
        "disparity": disparity,
        "validation": validation(handle),
        "validation_figure": validation_figure(handle),
        "notes": notes,
    }


def validation(handle: RunHandle) -> list[dict[str, Any]]:
    """The run against the published figures meant for its scenario (a shipped target file
    whose ``scenario`` is the run's, as in ``socialcredit validate`` and the report), for the
    whole run whatever the overview's filters; empty when no target file names the scenario."""
    return _validation(handle)[0]


def validation_figure(handle: RunHandle) -> dict[str, Any] | None:
    """The plot of model against published figures over time that the report draws (the
    series of :func:`validation` that count people or events), for the whole run; None when
    no target file names the run's scenario."""
    return _validation(handle)[1]


def _validation(handle: RunHandle) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Both, computed once per run: a run directory does not change while it is served (a
    changed one is a new handle)."""
    if handle._validation is not None:
        return handle._validation  # type: ignore[no-any-return]
    from socialcredit.targets import load_targets, over_time, shipped_targets, validate_run

    name = (handle.manifest.get("scenario") or {}).get("name")
    sets = [ts for ts in (load_targets(n) for n in shipped_targets()) if ts.scenario == name]
    if not sets:
        handle._validation = ([], None)
        return handle._validation  # type: ignore[no-any-return]
    comparisons = validate_run(handle.run, sets[0])
    rows = [{"figure": c.figure, "date": str(c.date), "unit": c.unit,
             "published": c.published, "model": c.model, "ratio": c.ratio,
             "within": bool(c.within), "tolerance": c.tolerance,
             "use": "held out" if c.holdout else "fitted"}
            for c in comparisons]
    data: list[dict[str, Any]] = []
    for k, s in enumerate(over_time(handle.run, sets[0], comparisons)):
        colour = COLOURS[k % len(COLOURS)]
        data.append({"type": "scatter", "mode": "lines", "name": f"{s['series']} (model)",
                     "legendgroup": s["series"], "line": {"color": colour},
                     "x": [d for d, _ in s["model"]], "y": [v for _, v in s["model"]],
                     "hovertemplate": "%{x}: %{y:,.0f}<extra>" + s["series"]
                     + " (model)</extra>"})
        data.append({"type": "scatter", "mode": "markers",
                     "name": f"{s['series']} (published)", "legendgroup": s["series"],
                     "x": [d for d, _, _ in s["published"]],
                     "y": [v for _, v, _ in s["published"]],
                     "marker": {"size": 9, "color": colour,
                                "symbol": ["circle-open" if h else "circle"
                                           for _, _, h in s["published"]]},
                     "hovertemplate": "%{x}: %{y:,.0f}<extra>" + s["series"]
                     + " (published)</extra>"})
    fig = _figure(data, f"Model against published figures ({sets[0].name}; open markers: "
                  "held out)", height=460,
                  yaxis={"title": {"text": "people or purchases, scaled to the real population"}})
    handle._validation = (rows, fig)
    return handle._validation  # type: ignore[no-any-return]


def _scores(handle: RunHandle, cur: duckdb.DuckDBPyConnection, region_id: str | None,
            where_region: str, where_group: str, d0: dt.date, d1: dt.date,
            notes: list[str]) -> dict[str, Any]:
    snaps = [d for d in handle.snapshot_days if d <= d1]
    if handle.has_snapshots and snaps:
        day = snaps[-1]
        rows = fetch(cur, f"""
            SELECT region, (score // 10) * 10 AS bin, count(*) AS n FROM snapshots
            WHERE day = ? AND grade <> 'none' AND {where_region} AND {where_group}
            GROUP BY ALL ORDER BY region, bin""", [day])
        data = []
        for k, reg in enumerate(r["id"] for r in handle.regions):
            pts = [r for r in rows if r["region"] == reg]
            if pts:
                data.append({"type": "bar", "name": reg, "x": [r["bin"] for r in pts],
                             "y": [r["n"] for r in pts], "opacity": 0.75,
                             "marker": {"color": COLOURS[k % len(COLOURS)]},
                             "hovertemplate": "score %{x}–%{x}+9: %{y}<extra>" + reg + "</extra>"})
        if not data:
            notes.append(f"nobody in this selection had a score on {day}")
        return _figure(data, f"Score distribution on {day} (scored subjects)", barmode="overlay",
                       xaxis={"title": {"text": "score (bins of 10 points)"}},
                       yaxis={"title": {"text": "subjects"}})
    rows = fetch(cur, f"""
        SELECT day, region, sum(score_sum) AS s, sum(scored) AS n FROM daily
        WHERE day BETWEEN ? AND ? AND {where_region} AND {where_group}
        GROUP BY ALL ORDER BY day""", [d0, d1])
    data = []
    for k, reg in enumerate(r["id"] for r in handle.regions):
        pts = [r for r in rows if r["region"] == reg and r["n"]]
        if pts:
            data.append({"type": "scatter", "mode": "lines", "name": reg,
                         "x": [r["day"].isoformat() for r in pts],
                         "y": [round(r["s"] / r["n"], 1) for r in pts],
                         "line": {"color": COLOURS[k % len(COLOURS)]}})
    notes.append("the run has no snapshots (no ledger): the chart shows mean scores")
    return _figure(data, "Mean score of scored subjects", yaxis={"title": {"text": "score"}})


def _grade_names(handle: RunHandle, region: str, kind: str) -> list[str]:
    grades = (handle.manifest.get("policy") or {}).get("grades") or {}
    return list((grades.get(region) or {}).get(kind) or [])


def _grades(handle: RunHandle, cur: duckdb.DuckDBPyConnection, region_id: str | None,
            group_name: str, where: str, params: list[Any], cols: list[str]) -> dict[str, Any]:
    kind = "business" if group_name == "business" or group_name.startswith("size:") else "citizen"
    data: list[dict[str, Any]] = []
    if region_id is not None:
        names = _grade_names(handle, region_id, kind)
        present = [k for k in range(len(names)) if f"grade_{k}" in cols]
        if not present:
            return _figure([], f"Grade shares in {region_id}: no {kind} grades there")
        sums = ", ".join(f"sum({quote_ident(f'grade_{k}')}) AS g{k}" for k in present)
        rows = fetch(cur, f"SELECT day, {sums} FROM daily WHERE {where} "
                          f"AND kind = '{kind}' GROUP BY day ORDER BY day", params)
        for k in present:
            total = [sum(r[f"g{j}"] or 0 for j in present) for r in rows]
            data.append({"type": "scatter", "mode": "lines", "stackgroup": "one",
                         "name": names[k], "x": [r["day"].isoformat() for r in rows],
                         "y": [round((r[f"g{k}"] or 0) / t, 4) if t else 0
                               for r, t in zip(rows, total, strict=True)]})
        return _figure(data, f"Grade shares of graded {kind}s in {region_id}",
                       yaxis={"title": {"text": "share"}, "tickformat": ".0%"})
    # every region: the shares on the last day, one bar per region
    last = params[1]
    width = max((len(_grade_names(handle, r["id"], kind)) for r in handle.regions), default=0)
    present = [k for k in range(width) if f"grade_{k}" in cols]
    shares: dict[str, dict[str, float]] = {}
    if present:
        sums = ", ".join(f"sum({quote_ident(f'grade_{k}')}) AS g{k}" for k in present)
        by_region = {r["region"]: r for r in fetch(
            cur, f"SELECT region, {sums} FROM daily WHERE {where} AND day = ? AND "
                 f"kind = '{kind}' GROUP BY region", [*params, last])}
        for reg in handle.regions:
            names = _grade_names(handle, reg["id"], kind)
            row = by_region.get(reg["id"])
            if not names or row is None:
                continue
            ks = [k for k in present if k < len(names)]
            graded = sum(row[f"g{k}"] or 0 for k in ks)
            if not graded:
                continue
            shares[reg["id"]] = {names[k]: (row[f"g{k}"] or 0) / graded for k in ks}
    # each region has its own grade scale: its grades form one group of the legend, titled by
    # the region, coloured from the best (green) to the worst (red) of that scale
    for region_id_, by_grade in shares.items():
        reg_id = region_id_
        scale = list(by_grade)
        for j, name in enumerate(scale):
            data.append({"type": "bar", "name": name, "x": [reg_id],
                         "y": [round(by_grade[name], 4)], "legendgroup": reg_id,
                         "legendgrouptitle": {"text": reg_id},
                         "marker": {"color": _scale_colour(j, len(scale))},
                         "hovertemplate": f"{reg_id}: grade {name}, %{{y:.1%}} of graded "
                                          f"{kind}s<extra></extra>"})
    return _figure(data, f"Grade shares of graded {kind}s on {last}", barmode="stack",
                   legend={"groupclick": "toggleitem", "tracegroupgap": 12},
                   yaxis={"title": {"text": "share of graded subjects"}, "tickformat": ".0%"})


def _scale_colour(j: int, n: int) -> str:
    """Grade ``j`` of a scale of ``n`` (0 = best): from green through yellow to red."""
    t = j / max(1, n - 1)
    stops = ((0.0, (26, 152, 80)), (0.5, (254, 224, 139)), (1.0, (215, 48, 39)))
    for (t0, c0), (t1, c1) in zip(stops, stops[1:], strict=False):
        if t <= t1:
            u = (t - t0) / (t1 - t0)
            r, g, b = (round(a + (z - a) * u) for a, z in zip(c0, c1, strict=True))
            return f"rgb({r},{g},{b})"
    return "rgb(215,48,39)"


def _lists(cur: duckdb.DuckDBPyConnection, lists: list[str], where: str,
           params: list[Any]) -> dict[str, Any]:
    if not lists:
        return _figure([], "List sizes")
    sums = ", ".join(f"sum({quote_ident('listed_' + n)}) AS {quote_ident(n)}" for n in lists)
    rows = fetch(cur, f"SELECT day, {sums} FROM daily WHERE {where} GROUP BY day ORDER BY day",
                 params)
    x = [r["day"].isoformat() for r in rows]
    data = [{"type": "scatter", "mode": "lines", "name": n, "x": x,
             "y": [r[n] or 0 for r in rows],
             "hovertemplate": f"%{{x}}: %{{y:,}} subjects on {n}<extra></extra>"} for n in lists]
    return _figure(data, "Subjects on each list", hovermode="x unified",
                   yaxis={"title": {"text": "subjects on the list"}, "rangemode": "tozero"})


def _throttled(cur: duckdb.DuckDBPyConnection, cols: list[str], where: str,
               params: list[Any]) -> dict[str, Any]:
    """Subjects whose connection is throttled at each day's end (a measure with
    ``effect: throttle``); the sum over days is the subject-days throttled."""
    title = "Throttled connections"
    if "throttled" not in cols:
        return _figure([], title)
    rows = fetch(cur, f"SELECT day, sum(throttled) AS n, sum(throttle_starts) AS started "
                      f"FROM daily WHERE {where} GROUP BY day ORDER BY day", params)
    if not any(r["n"] or r["started"] for r in rows):
        return _figure([], title)
    total = sum(int(r["n"] or 0) for r in rows)
    x = [r["day"].isoformat() for r in rows]
    data = [{"type": "scatter", "mode": "lines", "name": "throttled", "x": x,
             "y": [int(r["n"] or 0) for r in rows],
             "hovertemplate": "%{x}: %{y:,} subjects throttled<extra></extra>"}]
    return _figure(data, f"{title}: {total:,} subject-days", showlegend=False,
                   yaxis={"title": {"text": "subjects throttled"}, "rangemode": "tozero"})


def _decisions(cur: duckdb.DuckDBPyConnection, services: list[str], cols: list[str],
               where: str, params: list[Any]) -> dict[str, Any]:
    if not services:
        return _figure([], "Decisions by service and outcome")
    parts = []
    for s in services:
        for o in OUTCOMES:
            c = f"{o}_{s}"
            if c in cols:
                parts.append(f"sum({quote_ident(c)}) AS {quote_ident(c)}")
    row = fetch(cur, f"SELECT {', '.join(parts)} FROM daily WHERE {where}", params)[0]
    data = []
    colours = {"granted": "#9ab", "denied": "#d62728", "fast_tracked": "#2ca02c"}
    for o in OUTCOMES:
        data.append({"type": "bar", "name": o.replace("_", "-"), "x": services,
                     "y": [int(row.get(f"{o}_{s}") or 0) for s in services],
                     "marker": {"color": colours[o]},
                     "hovertemplate": f"%{{x}}: %{{y:,}} {o.replace('_', '-')}<extra></extra>"})
    return _figure(data, "Decisions by service and outcome", barmode="group",
                   yaxis={"title": {"text": "decisions (log scale)"}, "type": "log"},
                   xaxis={"tickangle": -40})


def _wrongful(handle: RunHandle, cur: duckdb.DuckDBPyConnection, region_id: str | None,
              group_name: str, services: list[str], cols: list[str], where: str,
              params: list[Any], d0: dt.date, d1: dt.date, notes: list[str]) -> dict[str, Any]:
    if handle.has_ledger:
        kind = None
        if group_name == "citizen":
            kind = "citizen"
        elif group_name == "business":
            kind = "business"
        cond = subject_range_condition(handle, region_id, kind)
        if group_name not in ("all", "citizen", "business") and handle.snapshot_days:
            _, band = group_condition(group_name)
            first = handle.snapshot_days[0]
            cond += (f" AND subject_id IN (SELECT subject_id FROM snapshots WHERE day = "
                     f"{quote_literal(first.isoformat())} AND {band})")
        # as socialcredit.analysis.metrics.wrongful_decisions: the channel of the subject's
        # most recent false record on or before the day of the decision
        query = f"""
            SELECT coalesce(r.channel, '(no false record of its own)') AS channel,
                   count(*) AS n
            FROM (SELECT subject_id, day FROM @WRONGFUL@
                  WHERE day BETWEEN ? AND ? AND {cond}) d
            ASOF LEFT JOIN (SELECT subject_id, day, channel FROM @FALSE@) r
              ON d.subject_id = r.subject_id AND d.day >= r.day
            GROUP BY 1 ORDER BY 2 DESC, 1"""
        index = handle.index()
        if group_name in ("all", "citizen", "business") and index.has("wrongful"):
            # the subject index keeps these rows apart: milliseconds instead of a scan
            with bounded(index.cursor()) as icur:
                rows = fetch(icur, query.replace("@WRONGFUL@", "idx.wrongful")
                             .replace("@FALSE@", "idx.false_records"), [d0, d1])
        else:
            rows = fetch(cur, query.replace(
                "@WRONGFUL@", "(SELECT subject_id, day FROM decisions WHERE wrongful)").replace(
                "@FALSE@", "(SELECT subject_id, day, channel FROM records WHERE NOT true_record)"),
                [d0, d1])
        notes.append("a wrongful decision is put down to the channel of the subject's most "
                     "recent false record; '(no false record of its own)': it reached the "
                     "subject through its group, or rests on a false record made before "
                     "the reported days")
        data = [{"type": "bar", "x": [r["channel"] for r in rows], "y": [r["n"] for r in rows],
                 "marker": {"color": "#d62728"}, "name": "wrongful decisions",
                 "hovertemplate": "%{x}: %{y:,} wrongful decisions<extra></extra>"}] if rows else []
        return _figure(data, "Wrongful decisions by the channel of the false records",
                       yaxis={"title": {"text": "wrongful decisions"}})
    present = [s for s in services if f"wrongful_{s}" in cols]
    if not present:
        return _figure([], "Wrongful decisions")
    sums = ", ".join(f"sum({quote_ident('wrongful_' + s)}) AS {quote_ident(s)}" for s in present)
    row = fetch(cur, f"SELECT {sums} FROM daily WHERE {where}", params)[0]
    notes.append("the run has no ledger: wrongful decisions are shown by service, not channel")
    data = [{"type": "bar", "x": present, "y": [int(row.get(s) or 0) for s in present],
             "marker": {"color": "#d62728"}, "name": "wrongful decisions"}]
    if not any(data[0]["y"]):
        data = []
    return _figure(data, "Wrongful decisions by service", xaxis={"tickangle": -40})


def _in_group(group: str, cell: dict[str, Any]) -> bool:
    """Whether a cell of ``daily`` (kind and bands) belongs to a group of :data:`GROUPS`."""
    kind = cell["kind"]
    if group in ("citizen", "business"):
        return bool(kind == group)
    what, _, value = group.partition(":")
    if what == "income":
        return bool(kind == "citizen" and cell["income"] == int(value))
    if what == "size":
        return bool(kind == "business" and cell["size"] == int(value))
    if what in ("urban", "rural"):
        return bool(kind == "citizen" and cell["urban"] is not None
                    and bool(cell["urban"]) == (what == "urban"))
    return True


def _disparity(cur: duckdb.DuckDBPyConnection, lists: list[str], services: list[str],
               cols: list[str], where: str, params: list[Any],
               last: dt.date) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    denied = [f"denied_{s}" for s in services if f"denied_{s}" in cols]
    decided = [f"{o}_{s}" for s in services for o in OUTCOMES if f"{o}_{s}" in cols]
    wrongful = [f"wrongful_{s}" for s in services if f"wrongful_{s}" in cols]
    listed = [f"listed_{n}" for n in lists]
    cells = fetch(cur, f"""
        SELECT kind, income, urban, size,
               sum({_sum(denied)}) AS denied, sum({_sum(decided)}) AS decided,
               sum({_sum(wrongful)}) AS wrongful,
               sum(CASE WHEN day = ? THEN {_sum(listed)} ELSE 0 END) AS listed,
               sum(CASE WHEN day = ? THEN subjects ELSE 0 END) AS subjects
        FROM daily WHERE {where} GROUP BY ALL""", [last, last, *params])
    out: list[dict[str, Any]] = []
    for g in GROUPS:
        if g in ("all", "citizen", "business"):
            continue
        mine = [c for c in cells if _in_group(g, c)]
        subjects = sum(int(c["subjects"] or 0) for c in mine)
        if not subjects:
            continue
        dec = sum(int(c["decided"] or 0) for c in mine)
        den = sum(int(c["denied"] or 0) for c in mine)
        wrong = sum(int(c["wrongful"] or 0) for c in mine)
        lst = sum(int(c["listed"] or 0) for c in mine)
        out.append({
            "group": g, "label": GROUPS[g][0], "subjects": subjects,
            "decisions": dec, "denied": den, "wrongful": wrong, "listed": lst,
            "denied_per_100_decisions": round(100 * den / dec, 3) if dec else None,
            "wrongful_per_100_denials": round(100 * wrong / den, 3) if den else None,
            "listed_per_1000": round(1000 * lst / subjects, 3),
        })
    return _disparity_map(out, cells, last), out


#: The disparity map's measures: key of a row, label, the count behind it, its base, the unit.
DISPARITY_MEASURES = (
    ("denied_per_100_decisions", "denied per<br>100 decisions", "denied", "decisions", 100),
    ("wrongful_per_100_denials", "wrongful per<br>100 denials", "wrongful", "denied", 100),
    ("listed_per_1000", "listed per 1,000<br>(last day)", "listed", "subjects", 1000),
)


def _disparity_map(rows: list[dict[str, Any]], cells: list[dict[str, Any]],
                   last: dt.date) -> dict[str, Any]:
    """A heat map of groups (rows) by measure (columns). Each cell's colour is the group's
    rate over everyone's (1 = the same; one unitless scale for every column), and its text
    gives the rate with the counts behind it."""
    if not rows:
        return _figure([], "Disparity by group")
    everyone = {
        "denied": sum(int(c["denied"] or 0) for c in cells),
        "decisions": sum(int(c["decided"] or 0) for c in cells),
        "wrongful": sum(int(c["wrongful"] or 0) for c in cells),
        "listed": sum(int(c["listed"] or 0) for c in cells),
        "subjects": sum(int(c["subjects"] or 0) for c in cells),
    }
    labels = [r["label"] for r in rows]
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for r in rows:
        zr: list[float | None] = []
        tr: list[str] = []
        for key, _, count, base, per in DISPARITY_MEASURES:
            value, n, d = r[key], int(r[count]), int(r[base])
            overall = everyone[count] / everyone[base] * per if everyone[base] else None
            zr.append(round(value / overall, 3) if value is not None and overall else None)
            tr.append("–" if value is None else f"{value:,.1f} ({n:,} of {d:,})")
        z.append(zr)
        text.append(tr)
    data = [{"type": "heatmap", "x": [m[1] for m in DISPARITY_MEASURES], "y": labels, "z": z,
             "text": text, "texttemplate": "%{text}", "textfont": {"size": 11},
             "zmin": 0, "zmid": 1, "zmax": 2,
             "colorscale": [[0, "#4575b4"], [0.5, "#f7f7f7"], [1, "#d73027"]],
             "colorbar": {"title": {"text": "× everyone's rate"}, "tickvals": [0, 0.5, 1, 1.5, 2],
                          "ticktext": ["0", "0.5", "1 (same)", "1.5", "≥ 2"]},
             "hovertemplate": "%{y}: %{text}<br>%{z:.2f} × everyone's rate"
                              "<extra></extra>", "xgap": 2, "ygap": 2}]
    return _figure(data, f"Disparity by group (lists on {last})",
                   height=max(400, 60 + 34 * len(rows)),
                   margin={"l": 60, "r": 20, "t": 48, "b": 40},
                   xaxis={"tickangle": 0}, yaxis={"autorange": "reversed"})



# --- lists -------------------------------------------------------------------------------------


def lists_on(handle: RunHandle, date: str | None) -> dict[str, Any]:
    """Each list of the run with how many subjects are on it on a date (from ``daily``)."""
    day = handle.date(date)
    cols = _daily_columns(handle)
    names = [n for n in (handle.manifest.get("policy") or {}).get("lists") or []
             if f"listed_{n}" in cols]
    counts: dict[str, int] = {}
    if names:
        sums = ", ".join(f"sum({quote_ident('listed_' + n)}) AS {quote_ident(n)}" for n in names)
        with bounded(handle.run.cursor()) as cur:
            row = fetch(cur, f"SELECT {sums} FROM daily WHERE day = ?", [day])[0]
        counts = {n: int(row.get(n) or 0) for n in names}
    return {"run": handle.id, "date": day.isoformat(), "ledger": handle.has_ledger,
            "lists": [{"list": n, "subjects": counts.get(n, 0), "kind": _list_kind(n)}
                      for n in names]}


def _list_kind(name: str) -> str:
    return "redlist" if any(w in name for w in ("honour", "red", "merit")) else "blacklist"


def list_members(handle: RunHandle, name: str, date: str | None = None, page: int = 1,
                 page_size: int = 50, region: str | None = None, kind: str | None = None,
                 false_caused: bool | None = None) -> dict[str, Any]:
    """Who is on list ``name`` on a date, a page at a time, by subject id.

    A subject is on the list when its last list event up to the date is an entry or an
    extension; a subject with no event by then holds what it held when the period began
    (listed during the burn-in): its first later event says so (an exit or extension means
    listed), or, with no event at all, the snapshots' flag."""
    if not 1 <= page_size <= MAX_PAGE_SIZE or page < 1:
        raise NotFound(f"pages are numbered from 1 and hold 1 to {MAX_PAGE_SIZE} subjects")
    query, params, day, reg = _members_sql(handle, name, date, region, kind, false_caused)
    query += " LIMIT ? OFFSET ?"
    params = [*params, page_size, (page - 1) * page_size]
    with bounded(handle.run.cursor()) as cur:
        rows = fetch(cur, query, params)
        total = int(rows[0]["total"]) if rows else 0
        if not rows and page > 1:
            count = fetch(cur, f"SELECT count(*) AS n FROM ({query.rsplit('ORDER BY', 1)[0]})",
                          params[:-2])
            total = int(count[0]["n"])
    members = []
    for r in rows:
        sid = int(r["subject_id"])
        members.append({
            "subject_id": sid,
            "kind": "citizen" if sid < handle.n_citizens else "business",
            "uscc": handle.uscc(sid),
            "region": handle.region_of(sid),
            "since": r["since"].isoformat() if r["since"] else None,
            "reason": r["reason"],
            "false_caused": bool(r["false_caused"]),
        })
    pages = max(1, -(-total // page_size))
    return {"run": handle.id, "list": name, "kind": _list_kind(name), "date": day.isoformat(),
            "total": total, "page": page, "page_size": page_size, "pages": pages,
            "filters": {"region": reg["id"] if reg else None, "kind": kind or None,
                        "false_caused": false_caused},
            "members": members}


def _members_sql(handle: RunHandle, name: str, date: str | None, region: str | None,
                 kind: str | None, false_caused: bool | None
                 ) -> tuple[str, list[Any], dt.date, dict[str, Any] | None]:
    """The query of who is on list ``name`` on a date (ordered by subject, no limit), its
    parameters, the date and the region."""
    lists = list((handle.manifest.get("policy") or {}).get("lists") or [])
    if name not in lists:
        raise NotFound(f"the run {handle.id} has no list {name!r}")
    day = handle.date(date)
    reg = handle.region_index(region)
    if kind not in (None, "", "citizen", "business"):
        raise NotFound(f"there is no kind {kind!r}: use citizen or business")
    handle.require_ledger("who is on a list")
    bit = lists.index(name)
    # without snapshots, a day before the run finds none (subjects listed since the burn-in
    # then go unseen)
    first = handle.snapshot_days[0] if handle.snapshot_days else handle.start - dt.timedelta(1)
    cond = subject_range_condition(handle, reg["id"] if reg else None, kind or None)
    if false_caused is not None:
        cond += " AND false_caused" if false_caused else " AND NOT false_caused"
    snap = (f"SELECT subject_id, (false_lists::INTEGER >> {bit}) & 1 = 1 AS false_caused "
            f"FROM snapshots WHERE day = ? AND (lists::INTEGER >> {bit}) & 1 = 1")
    query = f"""
        WITH ev AS (
            SELECT subject_id, day, event, reason, false_caused, row_number() OVER () AS seq
            FROM list_events WHERE list = ?),
        upto AS (
            SELECT subject_id, arg_max(event, seq) AS last_event,
                   max(CASE WHEN event = 'enter' THEN day END) AS since,
                   arg_max(reason, CASE WHEN event <> 'exit' THEN seq END) AS reason,
                   arg_max(false_caused, CASE WHEN event <> 'exit' THEN seq END) AS false_caused
            FROM ev WHERE day <= ? GROUP BY subject_id),
        later AS (
            SELECT subject_id, arg_min(event, seq) AS first_event,
                   arg_min(false_caused, seq) AS false_caused
            FROM ev WHERE day > ? GROUP BY subject_id),
        snap AS ({snap}),
        members AS (
            SELECT subject_id, since, reason, false_caused FROM upto WHERE last_event <> 'exit'
            UNION ALL
            SELECT subject_id, NULL, NULL, false_caused FROM later
            WHERE first_event <> 'enter' AND subject_id NOT IN (SELECT subject_id FROM upto)
            UNION ALL
            SELECT subject_id, NULL, NULL, false_caused FROM snap
            WHERE subject_id NOT IN (SELECT subject_id FROM ev))
        SELECT subject_id, since, reason, false_caused, count(*) OVER () AS total
        FROM members WHERE {cond}
        ORDER BY subject_id"""
    return query, [name, day, day, first], day, reg


# --- exports: CSV and Parquet files of the table views --------------------------------------

#: The most rows one export holds (a table view's download is cut there; the response's
#: ``X-Rows-Limit`` header says so).
EXPORT_ROWS = 1_000_000
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
#: Columns of ``subjects`` that a list's export carries (when the run has the table).
MEMBER_DEMOGRAPHICS = ("region", "kind", "income_band", "education_band", "age_band", "urban",
                       "sector", "size_band", "uscc")


def _copy(handle: RunHandle, query: str, params: list[Any], fmt: str, folder: str) -> str:
    """Write ``query``'s rows (at most EXPORT_ROWS) to a file in ``folder``; its path."""
    import os

    if fmt not in EXPORT_TYPES:
        raise NotFound(f"there is no format {fmt!r}: use csv or parquet")
    target = os.path.join(folder, f"export.{fmt}")
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER"
    with bounded(handle.run.cursor(), QUERY_SECONDS * 3) as cur:
        cur.execute(f"COPY ({query} LIMIT {EXPORT_ROWS}) TO {quote_literal(target)} "
                    f"({options})", params)
    return target


def export_table(handle: RunHandle, table: str, fmt: str, folder: str,
                 subject: int | None = None) -> str:
    """A run's table (one subject's rows when ``subject`` is given), as a file in ``folder``."""
    if not handle.run.has(table):
        raise NotFound(f"the run {handle.id} has no table {table!r}")
    query = f"SELECT * FROM {quote_ident(table)}"
    params: list[Any] = []
    if subject is not None:
        if "subject_id" not in handle.run.columns(table):
            raise NotFound(f"the table {table} is not kept by subject")
        query += " WHERE subject_id = ?"
        params.append(subject)
    return _copy(handle, query, params, fmt, folder)


def export_members(handle: RunHandle, name: str, fmt: str, folder: str, date: str | None = None,
                   region: str | None = None, kind: str | None = None,
                   false_caused: bool | None = None) -> str:
    """Who is on list ``name`` on a date (every member, with demographics) as a file."""
    query, params, _, _ = _members_sql(handle, name, date, region, kind, false_caused)
    body, _, _ = query.rpartition("ORDER BY")
    body = body.replace(", count(*) OVER () AS total", "")
    cols = "m.subject_id, m.since, m.reason, m.false_caused"
    join = ""
    if handle.run.has("subjects"):
        have = set(handle.run.columns("subjects"))
        cols += "".join(f", s.{c}" for c in MEMBER_DEMOGRAPHICS if c in have)
        join = "LEFT JOIN subjects s ON s.subject_id = m.subject_id"
    return _copy(handle, f"SELECT {cols} FROM ({body}) m {join} ORDER BY m.subject_id", params,
                 fmt, folder)


# --- policy ------------------------------------------------------------------------------------


SECTION_TITLES = {
    "score": "Scores", "lists": "Lists (blacklists and redlists)",
    "measures": "Measures (sanctions and privileges)", "appeals": "Objections and appeals",
    "repair": "Credit repair",
}


def _section_title(section: str) -> str:
    if section in SECTION_TITLES:
        return SECTION_TITLES[section]
    what, _, kind = section.partition(".")
    return f"{what.capitalize()} ({kind}s)" if kind else what.capitalize()


@lru_cache(maxsize=64)
def _resolved(policy: str, extension: str | None, reforms: tuple[str, ...], region: str,
              date: dt.date) -> dict[str, Any]:
    from dataclasses import asdict

    from socialcredit.catalogue import load_catalogue
    from socialcredit.policy.compiler import as_policy, layered_for_region
    from socialcredit.policy.loading import baseline_of
    from socialcredit.policy.resolve import ResolvedPolicy, resolved_items

    cat = load_catalogue()
    base = baseline_of(as_policy(policy, cat))
    ext = as_policy(extension, cat) if extension else None
    doc = layered_for_region(base, ext, [as_policy(r, cat) for r in reforms], cat)
    resolved = ResolvedPolicy(name=str(doc.name), kind=str(doc.kind), layers=list(doc.layers),
                              region=region, date=date, items=resolved_items(doc, region, date))
    sections = [{"section": s, "title": _section_title(s), "items": [asdict(i) for i in items]}
                for s, items in resolved.sections().items()]
    return {"name": resolved.name, "layers": resolved.layers, "digest": resolved.digest(),
            "sections": sections, "audit": _audit(doc)}


def _audit(doc: Any) -> list[dict[str, Any]] | None:
    """The rights audit of a policy (``socialcredit.analysis.audit``), None when this
    version has none."""
    try:
        from socialcredit.analysis.audit import audit_policy, findings_json
    except ImportError:
        return None
    return findings_json(audit_policy(doc))


def policy_view(handle: RunHandle, region: str | None = None,
                date: str | None = None) -> dict[str, Any]:
    """The run's policy as it applied in a region on a date, with references and the audit."""
    reg = handle.region_index(region) or handle.regions[0]
    day = handle.date(date, handle.start)
    sc = handle.manifest.get("scenario") or {}
    ext = None
    for r in sc.get("regions") or []:
        if isinstance(r, dict) and r.get("id") == reg["id"]:
            ext = r.get("extension")
    try:
        resolved = _resolved(str(sc.get("policy")), ext, tuple(sc.get("reforms") or ()),
                             str(reg["id"]), day)
    except UserError as err:
        raise Unavailable(f"the policy of the run {handle.id} cannot be loaded: "
                          f"{err.sentence()}") from None
    run_hash = (handle.manifest.get("policy") or {}).get("hash")
    return {"run": handle.id, "region": reg["id"], "date": day.isoformat(),
            "regions": [r["id"] for r in handle.regions],
            "policy_hash": run_hash, **resolved}


# --- compare -----------------------------------------------------------------------------------


_COMPARISONS: dict[tuple[str, float, str, float], dict[str, Any]] = {}
_COMPARISONS_LOCK = threading.Lock()
_COMPARE_POOL: Any = None


def _analysis_compare(a: RunHandle, b: RunHandle) -> tuple[dict[str, Any] | None, str | None]:
    """``socialcredit.analysis.compare.compare_runs`` of two runs, cached, and bounded in time
    (a comparison that runs past the limit goes on in the background, and its result is
    kept for the next request). Returns (comparison, None) or (None, why not)."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    global _COMPARE_POOL
    try:
        from socialcredit.analysis.compare import compare_runs
    except ImportError:
        return None, "this version of socialcredit cannot compare runs subject by subject"
    key = (a.id, a.mtime, b.id, b.mtime)
    with _COMPARISONS_LOCK:
        if key in _COMPARISONS:
            return _COMPARISONS[key], None
        if _COMPARE_POOL is None:
            _COMPARE_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compare")
        pool = _COMPARE_POOL

    def work() -> dict[str, Any]:
        result = compare_runs(a.run, b.run)
        with _COMPARISONS_LOCK:
            if len(_COMPARISONS) >= 16:
                _COMPARISONS.pop(next(iter(_COMPARISONS)))
            _COMPARISONS[key] = result
        return result

    future = pool.submit(work)
    try:
        return future.result(timeout=QUERY_SECONDS), None
    except UserError as err:
        return None, err.message
    except FutureTimeout:
        raise QueryTimeout(f"comparing the runs took longer than {QUERY_SECONDS:g} s; it goes "
                           "on in the background, ask again in a while") from None


def compare(a: RunHandle, b: RunHandle, region: str | None = None,
            kind: str = "citizen") -> dict[str, Any]:
    """Two runs side by side: headline figures, the comparison of
    ``socialcredit.analysis.compare`` (runs of the same population and seed), and the matrix
    of how each subject's grade on the last day of run A became its grade in run B."""
    if kind not in ("citizen", "business"):
        raise NotFound(f"there is no kind {kind!r}: use citizen or business")
    reg = a.region_index(region)
    if reg is not None:
        b.region_index(region)
    keys = ("citizens", "businesses", "records", "records_false", "decisions", "denied",
            "fast_tracked", "throttled", "throttled_days", "wrongful", "acts")
    sa, sb = a.summary, b.summary
    headline = [{"figure": k, "a": sa.get(k), "b": sb.get(k)} for k in keys]
    for name in sorted(set(sa.get("lists", {})) | set(sb.get("lists", {}))):
        headline.append({"figure": f"on list {name} (last day)",
                         "a": sa.get("lists", {}).get(name), "b": sb.get("lists", {}).get(name)})
    analysis, note = _analysis_compare(a, b)
    out: dict[str, Any] = {"a": run_entry(a), "b": run_entry(b), "headline": headline,
                           "region": reg["id"] if reg else None, "kind": kind,
                           "comparable": analysis is not None, "note": note,
                           "analysis": analysis, "transition": None}
    rows = []
    if analysis is not None:
        subjects = analysis.get("subjects") or {}
        if not subjects.get("available"):
            out["note"] = subjects.get("note")
        rows = [r for r in subjects.get("grade_transitions") or []
                if r.get("kind") == kind and (reg is None or r.get("region") == reg["id"])]
    if rows:
        out["transition"] = _transition(a, b, rows, kind, reg["id"] if reg else None)
    return out


def _transition(a: RunHandle, b: RunHandle, rows: list[dict[str, Any]], kind: str,
                region: str | None) -> dict[str, Any]:
    order: list[str] = []
    for r in a.regions:
        if region is None or r["id"] == region:
            order += [g for g in _grade_names(a, r["id"], kind) if g not in order]
    order.append("none")

    def rank(g: str) -> tuple[int, str]:
        return (order.index(g), g) if g in order else (len(order), g)

    cell: dict[tuple[str, str], int] = {}
    for r in rows:
        k = (str(r["from"]), str(r["to"]))
        cell[k] = cell.get(k, 0) + int(r["subjects"])
    grades_a = sorted({k[0] for k in cell}, key=rank)
    grades_b = sorted({k[1] for k in cell}, key=rank)
    matrix = [[cell.get((ga, gb), 0) for gb in grades_b] for ga in grades_a]
    day_a, day_b = a.end.isoformat(), b.end.isoformat()
    who = f"{kind}s" + (f" of {region}" if region else "")
    return {
        "day_a": day_a, "day_b": day_b, "grades_a": grades_a, "grades_b": grades_b,
        "matrix": matrix, "subjects": sum(cell.values()),
        "changed": sum(n for (ga, gb), n in cell.items() if ga != gb),
        "figure": _figure(
            [{"type": "heatmap", "z": matrix, "x": grades_b, "y": grades_a,
              "colorscale": [[0, "#f4f7fb"], [1, "#1f5fa8"]], "texttemplate": "%{z}",
              "hovertemplate": "A %{y} → B %{x}: %{z}<extra></extra>"}],
            f"Grades of {who} at the end of run A and of run B",
            xaxis={"title": {"text": f"grade in B ({b.id})"}, "type": "category"},
            yaxis={"title": {"text": f"grade in A ({a.id})"}, "type": "category",
                   "autorange": "reversed"}, height=420),
    }
