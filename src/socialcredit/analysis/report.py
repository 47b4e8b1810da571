"""``report``: one self-contained HTML page about a run, the page a journalist would screenshot.

Plotly draws the charts; plotly.js is embedded once, inline, so the file opens offline and
can be mailed or archived as it is. The page holds: the scenario and policy in brief, the
rights audit of the policy, scores over time by region, grade shares, the regions side by
side (decisions, lists and measures per region), list sizes, entries and exits, decisions by
service and outcome, wrongful sanctions and the channels behind them,
the rules that moved most points, and the metrics of :mod:`socialcredit.analysis.metrics`.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialcredit.analysis import metrics as M
from socialcredit.analysis.common import (
    calendar_of,
    check_trusted,
    has_ledger,
    open_run,
    scenario_of,
)
from socialcredit.errors import UserError

if TYPE_CHECKING:
    from socialcredit.store import Run

COLOURS = ["#1f5fa8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#30638e",
           "#e07a5f", "#3d405b", "#81b29a", "#f2cc8f", "#6d597a"]
OUTCOME_COLOURS = {"granted": "#9db4c0", "denied": "#d1495b", "fast_tracked": "#66a182"}

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0; color: #1d2433; background: #f6f7f9; }
header { background: #1d2433; color: #fff; padding: 28px 40px 22px; }
header h1 { margin: 0 0 6px; font-size: 28px; }
header p { margin: 4px 0; color: #c9d1e0; max-width: 70em; }
main { padding: 10px 40px 40px; max-width: 1280px; }
section { background: #fff; border-radius: 6px; padding: 18px 24px; margin: 18px 0;
          box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { margin: 0 0 8px; font-size: 20px; }
p.note { color: #5b6475; font-size: 13px; margin: 4px 0 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 18px 0 0; }
.card { background: #fff; border-radius: 6px; padding: 12px 18px; min-width: 150px;
        box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card b { display: block; font-size: 24px; color: #1d2433; }
.card span { font-size: 12px; color: #5b6475; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #e6e8ec;
         vertical-align: top; }
th { color: #5b6475; font-weight: 600; }
td.nowrap { white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.sev-high { color: #b3261e; font-weight: 600; } .sev-medium { color: #a66300; }
.sev-low { color: #5b6475; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 1000px) { .grid { grid-template-columns: 1fr; } }
footer { color: #5b6475; font-size: 12px; padding: 0 40px 30px; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:  # NaN
            return "–"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.{digits}g}"
    return str(v)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f} %"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for i, v in enumerate(r):
            cls = ' class="n"' if i in numeric else (' class="nowrap"' if isinstance(v, _NoWrap) else "")
            text = v if isinstance(v, _Raw) else _e(_fmt(v))
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Raw(str):
    """HTML that is already escaped."""


class _NoWrap(str):
    """Text kept on one line (short labels such as "ICCPR 19")."""


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.figures = 0

    def section(self, title: str, body: str, note: str | None = None) -> None:
        n = f'<p class="note">{_e(note)}</p>' if note else ""
        self.parts.append(f"<section><h2>{_e(title)}</h2>{n}{body}</section>")

    def figure(self, fig: Any, height: int = 380) -> str:
        self.figures += 1
        fig.update_layout(height=height, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                          template="plotly_white", font={"size": 12},
                          legend={"orientation": "h", "y": -0.18})
        fig.update_xaxes(automargin=True)
        fig.update_yaxes(automargin=True)
        out: str = fig.to_html(full_html=False, include_plotlyjs=False,
                               div_id=f"figure-{self.figures}",
                               config={"displaylogo": False, "responsive": True})
        return out


# --- sections -----------------------------------------------------------------------------------


def _brief(run: Run, page: _Page) -> str:
    m = run.manifest
    sc = m.get("scenario") or {}
    pol = m.get("policy") or {}
    pop = m.get("population") or {}
    start, days, burn = calendar_of(run)
    end = start + dt.timedelta(days=days - 1)
    census = m.get("census") or {}
    decisions = M.decisions_by_service(run)
    denied = sum(r["denied"] for r in decisions)
    wrongful = sum(r["wrongful"] for r in decisions)
    rec_f = sum((census.get("records_false") or {}).values())
    rec_t = sum((census.get("records_true") or {}).values())
    cards = [
        ("citizens", f"{pop.get('citizens', 0):,}"), ("businesses", f"{pop.get('businesses', 0):,}"),
        ("days", f"{days:,}"), ("records", f"{rec_t + rec_f:,}"),
        ("false records", _pct(rec_f / (rec_t + rec_f)) if rec_t + rec_f else "–"),
        ("denials", f"{denied:,}"), ("wrongful denials", f"{wrongful:,}"),
        ("list entries", f"{sum((census.get('list_enter') or {}).values()):,}"),
    ]
    card_html = "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>'
                        for k, v in cards)
    reforms = ", ".join(pol.get("reforms") or []) or "none"
    scale = float(pop.get("scale", 1.0) or 1.0)
    head = (f"<header><h1>{_e(sc.get('name', 'run'))}: who the policy punished, how fast, "
            f"how fairly, how often by mistake</h1>"
            f"<p>{_e(sc.get('description', ''))}</p>"
            f"<p>Policy <b>{_e(pol.get('name', '?'))}</b> (reforms: {_e(reforms)}) · "
            f"{_e(start.isoformat())} to {_e(end.isoformat())} after {burn} days of burn-in · "
            f"seed {_e(m.get('seed'))} · {pop.get('citizens', 0):,} simulated citizens"
            + (f" standing for about {pop.get('citizens', 0) / scale:,.0f} people" if scale != 1 else "")
            + f" · socialcredit {_e(m.get('version', ''))}</p>"
            f'<div class="cards">{card_html}</div></header>')
    regions = [(r.get("id"), r.get("name"), r.get("citizens"), r.get("businesses"),
                r.get("extension") or "baseline only") for r in pop.get("regions") or []]
    body = _table(["region", "name", "citizens", "businesses", "policy layer"], regions, {2, 3})
    lists = _policy_lists(run)
    if lists:
        body += "<h3>Lists</h3>" + _table(["list", "kind", "subjects", "term (days)"], lists, {3})
    n_rules = len(pol.get("rules") or [])
    n_meas = len(pol.get("measures") or [])
    page.section("The scenario and the policy in brief", body,
                 f"{n_rules} rules that move points or put subjects on lists; {n_meas} measures "
                 "(sanctions and privileges). Every subject is synthetic.")
    return head


def _policy_lists(run: Run) -> list[tuple[Any, ...]]:
    try:
        from socialcredit.analysis.common import policy_tables

        pol = policy_tables(run)
    except Exception:  # noqa: BLE001 - the brief is a courtesy; the run itself is complete
        return []
    out = []
    for j, n in enumerate(pol.list_names):
        active = pol.list_active[..., j] > 0
        term = int(pol.list_term[..., j][active].max()) if active.any() else 0
        out.append((n, "blacklist" if int(pol.list_kind[j]) == 0 else "redlist",
                    "citizens" if int(pol.list_subject_kind[j]) == 0 else "businesses",
                    term or ("until an exit applies" if active.any() else "not in force")))
    return out


def _audit(run: Run, page: _Page) -> None:
    from socialcredit.analysis.audit import audit_policy

    sc = scenario_of(run)
    findings = []
    seen = set()
    for name in [sc.policy, *[r.extension for r in sc.regions if r.extension], *sc.reforms]:
        try:
            fs = audit_policy(name)
        except Exception:  # noqa: BLE001 - a policy file moved since the run: skip its audit
            continue
        for f in fs:
            key = (f.rule, f.rights, f.why)
            if key not in seen:
                seen.add(key)
                findings.append(f)
    if not findings:
        page.section("Rights audit of the policy", "<p>No findings.</p>")
        return
    from socialcredit.analysis.audit import RIGHTS_ORDER, SEVERITIES

    rank = {r: i for i, r in enumerate(RIGHTS_ORDER)}
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity),
                                 min(rank.get(r, 99) for r in f.rights), f.rule))
    rows = [(_Raw(f'<span class="sev-{_e(f.severity)}">{_e(f.severity)}</span>'),
             _NoWrap(", ".join(f.rights)), f.rule, f.why) for f in findings]
    high = sum(1 for f in findings if f.severity == "high")
    page.section("Rights audit of the policy", _table(["severity", "rights", "rule", "why"], rows),
                 f"{len(findings)} findings, {high} of high severity "
                 "(socialcredit policy audit; ICCPR and the Convention on the Rights of the Child).")


def _scores(run: Run, page: _Page) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    dist = M.score_distribution(run)
    means = M.mean_scores(run)
    if not (dist or means):
        page.section("Scores over time", "<p>No subject carries a score under this policy.</p>")
        return
    # citizens and businesses are scored on different scales: one panel each. A kind whose
    # quartiles never move (most businesses keep their starting score) is shown by its mean
    # instead, and a kind whose mean does not move either gets a sentence, not a flat panel.
    flat_notes: list[str] = []
    mode: dict[str, str] = {}
    for kind in sorted({r["kind"] for r in dist + means}, key=lambda k: k != "citizen"):
        d = [r for r in dist if r["kind"] == kind]
        mn = [r for r in means if r["kind"] == kind]
        if d and not _flat(d, ("p25", "p50", "p75")):  # what the panel draws
            mode[kind] = "dist"
        elif mn and not _flat(mn, ("mean",), tolerance=0.5):
            mode[kind] = "mean"
            if d:
                flat_notes.append(f"The {_plural(kind)}' quartiles did not move (median "
                                  f"{_fmt(d[0]['p50'])}); their panel shows the mean score.")
        else:
            level = _fmt((d or mn)[0].get("p50", (d or mn)[0].get("mean")))
            flat_notes.append(f"Scored {_plural(kind)} kept their scores (at {level}) "
                              "throughout: no panel is drawn for them.")
    if not mode:
        page.section("Scores over time", "<p>" + _e(" ".join(flat_notes)) + "</p>")
        return
    kinds = list(mode)
    rows = [r for r in dist if mode.get(r["kind"]) == "dist"] + \
        [r for r in means if mode.get(r["kind"]) == "mean"]
    fig = make_subplots(rows=1, cols=len(kinds), subplot_titles=[
        _plural(k) + ("" if mode[k] == "dist" else " (mean score)") for k in kinds])
    keys = sorted({(r["region"], r["kind"]) for r in rows})
    regions = sorted({r for r, _ in keys})
    for region, kind in keys:
        c = COLOURS[regions.index(region) % len(COLOURS)]
        col = kinds.index(kind) + 1
        sel = [r for r in rows if (r["region"], r["kind"]) == (region, kind)]
        x = [r["day"] for r in sel]
        first = kinds.index(kind) == 0
        if mode[kind] == "dist":
            # the interquartile band; "tonexty" fills down to the trace just before
            fig.add_trace(go.Scatter(x=x, y=[r["p75"] for r in sel], mode="lines",
                                     line={"width": 0}, showlegend=False, hoverinfo="skip"),
                          row=1, col=col)
            fig.add_trace(go.Scatter(x=x, y=[r["p25"] for r in sel], mode="lines",
                                     line={"width": 0}, fill="tonexty",
                                     fillcolor=_alpha(c, 0.15), showlegend=False,
                                     customdata=[[r["p75"], r["p10"], r["p90"]] for r in sel],
                                     hovertemplate="%{x}: quartiles %{y} to %{customdata[0]}; "
                                                   "p10 %{customdata[1]}, p90 %{customdata[2]}"
                                                   "<extra>" + _e(region) + "</extra>"),
                          row=1, col=col)
            y = [r["p50"] for r in sel]
        else:
            y = [r["mean"] for r in sel]
        fig.add_trace(go.Scatter(x=x, y=y, name=region, legendgroup=region,
                                 mode="lines+markers" if mode[kind] == "dist" else "lines",
                                 showlegend=first or len(kinds) == 1,
                                 line={"color": c, "width": 2},
                                 hovertemplate="%{x}: %{y:" + (".0f" if mode[kind] == "dist"
                                                               else ".1f") + "}<extra>"
                                               + _e(region) + "</extra>"),
                      row=1, col=col)
    fig.update_yaxes(title_text="points", row=1, col=1)
    if dist:
        note = ("Median score of scored subjects by region, with the band from the first to "
                "the third quartile (snapshots).")
    else:
        note = ("Mean score of scored subjects by region (the run has no snapshots; run with "
                "--ledger for the whole distribution).")
    note = " ".join([note, *flat_notes])
    ineq = M.score_inequality(run)
    table = ""
    if ineq.get("available"):
        rows2 = [(g["region"], g["kind"], g["n"], g.get("mean"), g.get("gini"), g.get("p10"),
                  g.get("p50"), g.get("p90")) for g in ineq["groups"] if g.get("n")]
        table = (f"<h3>Score inequality on {ineq['day']}</h3>"
                 + _table(["region", "kind", "scored", "mean", "Gini", "p10", "median", "p90"],
                          rows2, {2, 3, 4, 5, 6, 7}))
    page.section("Scores over time", page.figure(fig) + table, note)


def _flat(rows: list[dict[str, Any]], keys: Sequence[str], tolerance: float = 0.0) -> bool:
    """Whether every region's series of each key stays within ``tolerance`` of its first
    value over the days (a panel of such series draws flat lines)."""
    first: dict[tuple[Any, str], float] = {}
    for r in rows:
        for k in keys:
            v = r.get(k)
            if v is None:
                continue
            f = first.setdefault((r["region"], k), float(v))
            if abs(float(v) - f) > tolerance:
                return False
    return True


def _plural(kind: str) -> str:
    return {"business": "businesses", "citizen": "citizens"}.get(kind, kind + "s")


def _alpha(hex_colour: str, a: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    return f"rgba({r},{g},{b},{a})"


def _grades(run: Run, page: _Page) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = M.grade_shares(run)
    if not rows:
        return
    # a panel whose shares never move (every business keeps its grade) is a sentence instead
    still: list[str] = []
    panels = []
    for region, kind in sorted({(r["region"], r["kind"]) for r in rows}):
        sel = [dict(r, region=r["grade"]) for r in rows if (r["region"], r["kind"]) == (region, kind)]
        if _flat(sel, ("share",), tolerance=0.0005):
            top = max((r for r in sel if r["day"] == sel[0]["day"]), key=lambda r: r["share"])
            still.append(f"{region} ({_plural(kind)}): {top['grade']} {_pct(top['share'])} "
                         "throughout")
        else:
            panels.append((region, kind))
    note = ("Share of each grade among graded subjects, by region and kind (best grade "
            "first in each region's scale).")
    if still:
        note += " Shares that did not move are not drawn: " + "; ".join(still) + "."
    if not panels:
        page.section("Grade shares", "<p>" + _e(note) + "</p>")
        return
    cols = min(3, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig = make_subplots(rows=nrows, cols=cols, shared_yaxes=True,
                        subplot_titles=[f"{r} ({_plural(k)})" for r, k in panels])
    from plotly.colors import sample_colorscale

    # best grade green, worst red, by its place in the first scale that has it
    scales = (run.manifest.get("policy") or {}).get("grades") or {}
    colour: dict[str, str] = {}
    for region_scales in scales.values():
        for names in region_scales.values():
            for k, g in enumerate(names or []):
                if g not in colour:
                    place = k / max(1, len(names) - 1)
                    colour[g] = sample_colorscale("RdYlGn", [1.0 - 0.9 * place - 0.05])[0]
    shown = set()
    for i, (region, kind) in enumerate(panels):
        sel = [r for r in rows if (r["region"], r["kind"]) == (region, kind)]
        grades = list(dict.fromkeys(r["grade"] for r in sel))
        for g in grades:
            pts = [r for r in sel if r["grade"] == g]
            c = colour.get(g, "#9db4c0")
            fig.add_trace(go.Scatter(x=[p["day"] for p in pts], y=[p["share"] for p in pts],
                                     name=g, stackgroup=f"s{i}", legendgroup=g,
                                     showlegend=g not in shown, line={"width": 0.5, "color": c}),
                          row=i // cols + 1, col=i % cols + 1)
            shown.add(g)
    fig.update_yaxes(tickformat=".0%")
    page.section("Grade shares", page.figure(fig, height=300 * nrows + 60), note)


def _regions(run: Run, page: _Page) -> None:
    """The regions side by side: where each policy layer applies, and what it does there."""
    import plotly.graph_objects as go

    cmp = M.region_comparison(run)
    regions = cmp["regions"]
    if len(regions) < 2:
        return
    ids = [r["region"] for r in regions]
    fig = go.Figure()
    for key, label, outcome in (("denied_per_1000", "denied", "denied"),
                                ("fast_tracked_per_1000", "fast-tracked", "fast_tracked")):
        fig.add_trace(go.Bar(x=ids, y=[r[key] or 0 for r in regions], name=label,
                             marker_color=OUTCOME_COLOURS[outcome],
                             hovertemplate="%{x}: %{y:.2f} " + label
                                           + " per 1,000 requests<extra></extra>"))
    fig.update_layout(barmode="group", yaxis_title="per 1,000 requests",
                      title="Denied and fast-tracked requests by region")
    body = page.figure(fig, height=340) + _table(
        ["region", "name", "policy layer", "citizens", "businesses", "scored citizens",
         "mean score", "requests", "denied ‰", "fast-tracked ‰", "wrongful ‰"],
        [(r["region"], r["name"], r["extension"] or "baseline only", r["citizens"],
          r["businesses"], _pct(r["scored_share"]) if r["scored_share"] else "–",
          r["mean_score"] if r["mean_score"] is not None else "–", r["requests"],
          r["denied_per_1000"], r["fast_tracked_per_1000"], r["wrongful_per_1000"])
         for r in regions], {3, 4, 6, 7, 8, 9, 10})

    def cell(v: float | None, n: int | None = None) -> str:
        text = "–" if v is None else _fmt(v)
        return text if n is None else f"{text} ({n:,})"

    if cmp["lists"]:
        body += "<h3>Lists by region</h3>" + _table(
            ["list", "of", *ids],
            [(x["list"], _plural(x["kind"]),
              *[cell(x["by_region"][i]["listed_per_1000"], x["by_region"][i]["entries"])
                for i in ids]) for x in cmp["lists"]], set(range(2, 2 + len(ids))))
    if cmp["measures"]:
        body += "<h3>Measures by region</h3>" + _table(
            ["measure", "asked by", *ids],
            [(x["measure"], _plural(x["kind"]),
              *[cell(x["by_region"][i]["per_1000"]) for i in ids]) for x in cmp["measures"]],
            set(range(2, 2 + len(ids))))
    page.section("Regions side by side", body,
                 "Each region under its own policy layers (the baseline, plus a regional "
                 "extension where one applies). Decisions per 1,000 requests; lists: how many are "
                 "on the list per 1,000 citizens or businesses of the region on an average "
                 "reported day (entries in brackets); measures: how often each fired per 1,000 "
                 "citizens or businesses of the region over the reported days.")


def _lists(run: Run, page: _Page) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    series = M.list_series(run)
    stock = series["stock"]
    if not stock:
        return
    names = list(dict.fromkeys(r["list"] for r in stock))
    names = [n for n in names if any(r["listed"] for r in stock if r["list"] == n)
             or any(r["entries"] or r["exits"] for r in series["flows"] if r["list"] == n)]
    if not names:
        page.section("Lists", "<p>Nobody was on a list during the reported days.</p>")
        return
    fig = make_subplots(rows=1, cols=2, subplot_titles=["on the list (each day)",
                                                        "entries (up) and exits (down) per week"])
    for i, n in enumerate(names):
        c = COLOURS[i % len(COLOURS)]
        sel = [r for r in stock if r["list"] == n]
        fig.add_trace(go.Scatter(x=[r["day"] for r in sel], y=[r["listed"] for r in sel], name=n,
                                 legendgroup=n, line={"color": c}), row=1, col=1)
        fl = [r for r in series["flows"] if r["list"] == n]
        fig.add_trace(go.Bar(x=[r["week"] for r in fl], y=[r["entries"] for r in fl], name=n,
                             legendgroup=n, showlegend=False, marker_color=c), row=1, col=2)
        fig.add_trace(go.Bar(x=[r["week"] for r in fl], y=[-r["exits"] for r in fl], name=n,
                             legendgroup=n, showlegend=False, marker_color=_alpha(c, 0.55)),
                      row=1, col=2)
    fig.update_layout(barmode="relative")
    tte = M.time_to_exit(run)
    rows = [(r["list"], r["method"], r["entries"], r["exits"], r.get("still_listed"),
             r.get("exits_of_earlier_entries"), r.get("median_days"), r.get("mean_days"),
             r.get("p90_days"), ", ".join(f"{k} {v}" for k, v in (r.get("by_reason") or {}).items()))
            for r in tte]
    table = "<h3>Time to exit a list</h3>" + _table(
        ["list", "method", "entries", "exits", "still listed", "exits of earlier entries",
         "median days", "mean days", "p90 days", "exits by reason"], rows,
        {2, 3, 4, 5, 6, 7, 8}) if rows else ""
    page.section("Lists: sizes, entries and exits", page.figure(fig, height=400) + table,
                 "Blacklists and redlists over the reported days. Time to exit counts entries "
                 "made during the reported days (with a ledger) or estimates it by Little's law.")


def _decisions(run: Run, page: _Page) -> None:
    import plotly.graph_objects as go

    rows = M.decisions_by_service(run)
    if not rows:
        return
    rows.sort(key=lambda r: (-(r["denied"] + r["fast_tracked"]), -r["requests"]))
    shown = [r for r in rows if r["denied"] or r["fast_tracked"]] or rows
    fig = go.Figure()
    for outcome, label in (("denied", "denied"), ("fast_tracked", "fast-tracked")):
        fig.add_trace(go.Bar(
            y=[r["service"] for r in shown], x=[r[outcome] for r in shown], name=label,
            orientation="h", marker_color=OUTCOME_COLOURS[outcome],
            customdata=[[r["requests"], r["granted"]] for r in shown],
            hovertemplate="%{y}: %{x} " + label + " of %{customdata[0]} requests "
                          "(%{customdata[1]} granted plainly)<extra></extra>"))
    fig.update_layout(barmode="stack", yaxis={"autorange": "reversed"},
                      xaxis_title="decisions", title="Denied and fast-tracked requests by service")
    table = _table(["service", "requests", "granted", "denied", "fast-tracked", "wrongful",
                    "denial rate"],
                   [(r["service"], r["requests"], r["granted"], r["denied"], r["fast_tracked"],
                     r["wrongful"], _pct(r["denied"] / r["requests"])) for r in rows],
                   {1, 2, 3, 4, 5, 6})
    page.section("Decisions by service and outcome",
                 page.figure(fig, height=max(300, 28 * len(shown) + 120)) + table,
                 "Every request is decided: granted, denied, or fast-tracked; the measure behind "
                 "each denial or privilege is in the ledger (socialcredit explain).")


def _throttles(run: Run, page: _Page) -> None:
    import plotly.graph_objects as go

    th = M.throttles(run)
    if not th.get("available") or not th["by_region"]:
        return
    fig = go.Figure()
    regions = list(dict.fromkeys(r["region"] for r in th["series"]))
    for i, reg in enumerate(regions):
        sel = [r for r in th["series"] if r["region"] == reg]
        fig.add_trace(go.Scatter(
            x=[r["day"] for r in sel], y=[int(r["throttled"] or 0) for r in sel], name=reg,
            line={"color": COLOURS[i % len(COLOURS)]},
            hovertemplate=f"{_e(reg)}: %{{y}} subjects throttled on %{{x}}<extra></extra>"))
    fig.update_layout(yaxis_title="subjects throttled (at the day's end)",
                      title="Throttled connections, each day")
    rows = [(r["region"], r["kind"], r["subject_days"], r["per_1000_subject_days"],
             r["started"], r["ended"]) for r in th["by_region"]]
    table = _table(["region", "kind", "subject-days throttled", "per 1,000 subject-days",
                    "throttles begun", "ended"], rows, {2, 3, 4, 5})
    led = th.get("ledger")
    if led:
        table += "<h3>How long a throttle lasts</h3>" + _table(
            ["begun in the reported days", "ended", "still throttled", "wrongful (false records "
             "alone)", "median days", "mean days", "p90 days"],
            [(led["begun"], led["ended"], led["still_throttled"], led["wrongful"],
              led.get("median_days"), led.get("mean_days"), led.get("p90_days"))],
            {0, 1, 2, 3, 4, 5, 6})
    page.section("Throttled connections", page.figure(fig, height=360) + table,
                 f"{th['subject_days']:,} subject-days throttled in all ({th['started']:,} "
                 f"throttles begun, {th['ended']:,} ended, {th.get('throttled_last_day', 0):,} "
                 "still throttled on the last day). A throttled connection is granted but slowed, "
                 "and stays so while the measure's trigger holds for the subject.")


def _wrongful(run: Run, page: _Page) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    w = M.wrongful_decisions(run)
    chans = [r for r in w["false_records"] if r["false"]]
    by_channel = w.get("by_channel") or []
    svc = [r for r in w["by_service"] if r["wrongful"]]
    titles = ["false records by channel"]
    if svc:
        titles.append("wrongful denials by service")
    if by_channel:
        titles.append("wrongful denials by the channel behind them")
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles)
    fig.add_trace(go.Bar(x=[r["channel"] for r in chans], y=[r["false"] for r in chans],
                         marker_color="#d1495b", name="false records",
                         customdata=[[r["true"], 100 * r["false_share"]] for r in chans],
                         hovertemplate="%{x}: %{y} false, %{customdata[0]} true "
                                       "(%{customdata[1]:.2f} % false)<extra></extra>"),
                  row=1, col=1)
    if svc:
        fig.add_trace(go.Bar(x=[r["service"] for r in svc], y=[r["wrongful"] for r in svc],
                             marker_color="#8d6a9f", name="wrongful denials"), row=1, col=2)
    if by_channel:
        fig.add_trace(go.Bar(x=[r["channel"] for r in by_channel],
                             y=[r["wrongful"] for r in by_channel], marker_color="#edae49",
                             name="by channel"), row=1, col=len(titles))
    fig.update_layout(showlegend=False)
    note = (f"{w['wrongful']:,} of {w['denied']:,} denials were wrongful "
            f"({_pct(w['rate'])}): their trigger would not hold without the subject's false "
            "records (a false-caused list entry, or a grade that the false points pushed down).")
    if w.get("note"):
        note += " The channels behind them " + M.NO_LEDGER + "."
    page.section("Wrongful sanctions and their channels", page.figure(fig, height=380), note)


def _rules(run: Run, page: _Page) -> None:
    import plotly.graph_objects as go

    rows = M.top_rules(run)
    if not rows:
        if not run.has("ledger"):
            page.section("Rules that moved most points",
                         f"<p>The points ledger {_e(M.NO_LEDGER)}.</p>")
        return
    fig = go.Figure(go.Bar(
        y=[r["rule"] for r in rows], x=[r["moved"] for r in rows], orientation="h",
        marker_color=["#66a182" if r["net"] > 0 else "#d1495b" for r in rows],
        customdata=[[r["net"], r["subjects"], r["reference"][:120]] for r in rows],
        hovertemplate="%{y}<br>%{x} points moved, net %{customdata[0]}, "
                      "%{customdata[1]} subjects<br>%{customdata[2]}<extra></extra>"))
    fig.update_layout(yaxis={"autorange": "reversed"}, xaxis_title="points moved (|points|)")
    table = _table(["rule", "points moved", "net", "changes", "subjects", "from false records",
                    "reference"],
                   [(r["rule"], r["moved"], r["net"], r["changes"], r["subjects"],
                     r["from_false_records"], r["reference"]) for r in rows], {1, 2, 3, 4, 5})
    page.section("Rules that moved most points",
                 page.figure(fig, height=max(300, 26 * len(rows) + 100)) + table,
                 "Green: rewards; red: deductions. Each rule carries the reference it models.")


def _fairness(run: Run, page: _Page) -> None:
    import math

    import plotly.graph_objects as go

    d = M.band_disparities(run)
    rows = [r for r in d["rows"] if r["disparity"] is not None]
    if not rows:
        page.section("Who is punished: disparities by band",
                     "<p>No list or denial to compare across bands.</p>", d.get("note"))
        return
    targets = list(dict.fromkeys(f"{'on ' if r['what'] == 'list' else 'denied '}{r['target']}"
                                 for r in rows))
    bands = list(dict.fromkeys(f"{r['axis']}: {r['band']}" for r in rows))
    z: list[list[float | None]] = [[None] * len(targets) for _ in bands]
    text: list[list[str]] = [[""] * len(targets) for _ in bands]
    for r in rows:
        i = bands.index(f"{r['axis']}: {r['band']}")
        j = targets.index(f"{'on ' if r['what'] == 'list' else 'denied '}{r['target']}")
        v = r["disparity"]
        z[i][j] = math.log2(v) if v > 0 else -4.0
        text[i][j] = f"{v:.2f}x (rate {r['rate']:.3%} vs {r['overall']:.3%})"
    fig = go.Figure(go.Heatmap(
        z=z, x=targets, y=bands, text=text, zmid=0, zmin=-3, zmax=3, colorscale="RdBu_r",
        hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>",
        colorbar={"title": "ratio", "tickvals": [-3, -2, -1, 0, 1, 2, 3],
                  "ticktext": ["1/8", "1/4", "1/2", "1", "2", "4", "8"]}))
    fig.update_layout(yaxis={"autorange": "reversed"}, xaxis={"tickangle": -35})
    page.section("Who is punished: disparities by band",
                 page.figure(fig, height=max(380, 22 * len(bands) + 200)),
                 "Each cell: the band's rate of being on the list (share of days) or of being "
                 "denied the service (share of its requests), divided by the rate of the whole "
                 "population of the same kind. Red: more than its share; blue: less."
                 + (f" Note: {d['note']}." if d.get("note") else ""))


def _behaviour(run: Run, page: _Page) -> None:
    ch = M.chilling(run)
    co = M.compliance(run)
    parts = []
    if ch["acts"]:
        sw = ch["feedback"]
        parts.append("<h3>Chilling: speech acts, expected and actual</h3>" + _table(
            ["act", "expected without the policy's pressure", "actual", "suppressed",
             "suppressed share"],
            [(a["act"], a["expected"], a["actual"], a["suppressed"], _pct(a["suppressed_share"]))
             for a in ch["acts"]], {1, 2, 3, 4})
            + f'<p class="note">Feedback switches: chilling {_fmt(sw["chilling"])}, deterrence '
              f'{_fmt(sw["deterrence"])}. Expected = actual divided by the factor the policy '
              "put on each act's daily chance, by region and epoch.</p>")
    if co["lists"]:
        parts.append("<h3>Compliance induced: listed debtors who repaid</h3>" + _table(
            ["lists left by meeting the obligation", "entered", "repaid", "share repaid",
             "induced by the listing (estimate)"],
            [(", ".join(co["lists"]), co["entered"], co["repaid"], _pct(co["share"]),
              co["induced"])], {1, 2, 3, 4})
            + f'<p class="note">With the compliance factor {co["compliance_factor"]:g}, a share '
              f'{co["induced_share_of_repayments"]:.0%} of the repayments of listed debtors is '
              "induced by the listing. FACTS: about 20 % of listed judgment debtors had complied "
              "by the end of 2015.</p>")
    if parts:
        page.section("Behaviour under pressure", "".join(parts))


def _validation(run: Run, page: _Page) -> None:
    """The run against the published figures meant for its scenario (a shipped target file
    whose ``scenario`` is the run's), with a plot of model against published over time."""
    import plotly.graph_objects as go

    from socialcredit.targets import load_targets, over_time, shipped_targets, validate_run

    name = (run.manifest.get("scenario") or {}).get("name")
    sets = [ts for ts in (load_targets(n) for n in shipped_targets()) if ts.scenario == name]
    if not sets:
        return
    ts = sets[0]
    rows = validate_run(run, ts)

    def fmt(v: float | None, unit: str) -> str:
        if v is None:
            return "–"
        return f"{v:.2%}" if unit == "share" else f"{v:,.0f}"

    table = _table(["figure", "date", "published", "model", "ratio", "within", "use"], [
        (c.figure, c.date, fmt(c.published, c.unit), fmt(c.model, c.unit),
         f"{c.ratio:.2f}" if c.ratio is not None else "–",
         f"{'yes' if c.within else 'no'} (±{c.tolerance:.0%})",
         "held out" if c.holdout else "fitted") for c in rows], numeric={2, 3, 4})
    fig = go.Figure()
    for s in over_time(run, ts, rows):
        fig.add_trace(go.Scatter(x=[d for d, _ in s["model"]], y=[v for _, v in s["model"]],
                                 mode="lines", name=f"{s['series']} (model)"))
        fig.add_trace(go.Scatter(x=[d for d, _, _ in s["published"]],
                                 y=[v for _, v, _ in s["published"]],
                                 mode="markers", name=f"{s['series']} (published)",
                                 marker={"size": 9, "symbol": ["circle-open" if h else "circle"
                                                               for _, _, h in s["published"]]}))
    fig.update_yaxes(title_text="people or purchases (scaled to the real population)")
    note = (f"Targets {ts.name}: published figures and the same quantities in this run, scaled "
            "to the real population. Held-out figures (open markers) are not used by "
            "calibration. Run `socialcredit validate RUN` for the same table.")
    page.section("Model against published figures", table + page.figure(fig, height=420), note)


def build_report(run: str | Path | Run) -> str:
    """The report of a run as one self-contained HTML document."""
    from plotly.offline import get_plotlyjs

    run = open_run(run)
    page = _Page()
    header = _brief(run, page)
    _audit(run, page)
    _scores(run, page)
    _grades(run, page)
    _regions(run, page)
    _lists(run, page)
    _validation(run, page)
    _decisions(run, page)
    _throttles(run, page)
    _wrongful(run, page)
    _rules(run, page)
    _fairness(run, page)
    _behaviour(run, page)
    title = f"socialcredit report: {(run.manifest.get('scenario') or {}).get('name', run.path.name)}"
    ledger = "with its ledger" if has_ledger(run) else "without a ledger (aggregates only)"
    footer = (f"<footer>Run {_e(run.path.name)} {ledger}; policy hash "
              f"{_e((run.manifest.get('policy') or {}).get('hash', ''))[:16]}…; written "
              f"{_e(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))} by "
              "socialcredit report. Every subject is synthetic; explain any one of them with "
              "<code>socialcredit explain RUN SUBJECT</code>.</footer>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{CSS}</style>"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
        f"{header}<main>{''.join(page.parts)}</main>{footer}</body></html>\n"
    )


def write_report(run: str | Path | Run, out: str | Path | None = None) -> Path:
    """Write the report of a run (default ``RUN/report.html``); returns the file's path."""
    run = open_run(run)
    check_trusted(run, "the report")
    target = Path(out) if out is not None else run.path / "report.html"
    _check_target(target)
    text = build_report(run)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot make the folder of the report {target} ({err.strerror})"
                        ) from None
    # written beside the target and renamed, so a reader never sees half a report
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _check_target(target: Path) -> None:
    """Refuse, before the report is built, a ``--out`` it cannot be written to. A missing
    folder is made (as ``run --out`` makes its parents); a folder or a path under a file is
    refused."""
    if target.is_dir():
        raise UserError(f"{target} is a folder; --out names the report's HTML file, e.g. "
                        f"{target / 'report.html'}")
    parent = target.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot write the report {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write the report {target}: {parent} is not writable")
