"""``compare``: two runs of the same population and seed, side by side and subject by subject.

Every random draw is keyed by meaning — seed, stream, day, subject, act or channel — never by
a running counter (DESIGN 2.9). Two runs of the same population and seed under different
policies therefore share their random numbers: a subject whose story differs between them
differs *because of the policy*, and the comparison can say which rule made the difference.
That only holds for the same seed, the same population and the same days, so
:func:`check_comparable` refuses anything else with a sentence.

The aggregate part needs only the manifests and ``daily``; the subject part (who changed,
the grade transition matrix, who entered or left each list and by which rule) needs both runs
to have stored their ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialcredit.analysis.common import calendar_of, has_ledger, open_run
from socialcredit.errors import UserError

if TYPE_CHECKING:
    import duckdb
    import numpy as np

    from socialcredit.store import Run

#: Region fields that shape the population (DESIGN 2.2); others (extension, surveillance,
#: name) are policy or behaviour and may differ between compared runs.
POPULATION_FIELDS = (
    "id", "citizens", "population", "admin_code", "businesses_per_1000", "urban_share",
    "income_shares", "education_shares", "age_shares", "consent_share", "household_mean",
    "household_income_sharing", "education_income_link", "employment_shares",
    "business_size_shares", "sector_shares",
)  # fmt: skip

#: Per table, the columns that make up a subject's story (names of rules are left out, so a
#: rule that a reform merely renames does not count as a difference).
STORY_COLUMNS = {
    "records": ("day", "act", "channel", "true_record", "delayed"),
    "ledger": ("day", "points", "score", "false_record"),
    "list_events": ("day", "list", "event", "false_caused"),
    "decisions": ("day", "service", "outcome", "measure", "wrongful"),
}
BEFORE = "(listed before the reported days)"
SAMPLE = 10


def _label(run: Run) -> dict[str, Any]:
    pol = run.manifest.get("policy") or {}
    sc = run.manifest.get("scenario") or {}
    return {"path": str(run.path), "scenario": sc.get("name"), "policy": pol.get("name"),
            "reforms": list(pol.get("reforms") or []), "hash": pol.get("hash")}


def _population(run: Run) -> list[dict[str, Any]]:
    regions = (run.manifest.get("scenario") or {}).get("regions") or []
    return [{k: r.get(k) for k in POPULATION_FIELDS} for r in regions]


def check_comparable(a: Run, b: Run) -> None:
    """Refuse, with one sentence, runs that do not share their random numbers."""
    pa_, pb_ = a.path.name, b.path.name
    sa, sb = a.manifest.get("seed"), b.manifest.get("seed")
    if sa != sb:
        raise UserError(
            f"the runs {pa_} and {pb_} cannot be compared: their seeds differ ({sa} and {sb}), "
            "so they do not share random numbers; compare runs of the same population and seed"
        )
    ca, cb = a.manifest.get("population") or {}, b.manifest.get("population") or {}
    counts_a = (ca.get("citizens"), ca.get("businesses"))
    counts_b = (cb.get("citizens"), cb.get("businesses"))
    if counts_a != counts_b:
        raise UserError(
            f"the runs {pa_} and {pb_} cannot be compared: their populations differ "
            f"({counts_a[0]} citizens and {counts_a[1]} businesses against {counts_b[0]} and "
            f"{counts_b[1]})"
        )
    ra, rb = _population(a), _population(b)
    if ra != rb:
        diff = next((f"region {x.get('id')} ({k})" for x, y in zip(ra, rb, strict=False)
                     for k in POPULATION_FIELDS if x.get(k) != y.get(k)), "the regions")
        raise UserError(
            f"the runs {pa_} and {pb_} cannot be compared: their populations differ in {diff}"
        )
    if calendar_of(a) != calendar_of(b):
        raise UserError(
            f"the runs {pa_} and {pb_} cannot be compared: they cover different days "
            "(start, length or burn-in)"
        )


# --- aggregates -------------------------------------------------------------------------------


def _flat(census: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in census.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                out[f"{k}.{kk}"] = int(vv)
        else:
            out[k] = int(v)
    return out


def _headline(census: dict[str, Any]) -> dict[str, int]:
    def total(key: str, prefix: str = "") -> int:
        return sum(int(v) for k, v in (census.get(key) or {}).items() if k.startswith(prefix))

    return {
        "acts": total("acts"),
        "records": total("records_true") + total("records_false"),
        "false records": total("records_false"),
        "list entries": total("list_enter"),
        "list exits": total("list_exit"),
        "decisions": total("decisions"),
        "denied": total("decisions", "denied_"),
        "fast-tracked": total("decisions", "fast_tracked_"),
        "wrongful denials": total("wrongful"),
        "points gained": int(census.get("points_up", 0)),
        "points lost": int(census.get("points_down", 0)),
    }


def _last_day(run: Run) -> dict[str, float]:
    lists = list((run.manifest.get("policy") or {}).get("lists") or [])
    cols = ", ".join([f'sum("listed_{n}") AS "on list {n}"' for n in lists]
                     + ['sum(score_sum) AS score_sum', 'sum(scored) AS scored'])
    row: dict[str, Any] = run.sql(
        f"SELECT {cols} FROM daily WHERE day = (SELECT max(day) FROM daily)").to_pylist()[0]
    out = {k: float(v or 0) for k, v in row.items() if k.startswith("on list ")}
    out["scored subjects"] = float(row["scored"] or 0)
    out["mean score of the scored"] = (float(row["score_sum"]) / float(row["scored"])
                                       if row["scored"] else 0.0)
    return out


def _rows(a: Mapping[str, float], b: Mapping[str, float]) -> list[dict[str, Any]]:
    return [{"what": k, "a": a.get(k, 0), "b": b.get(k, 0), "diff": b.get(k, 0) - a.get(k, 0)}
            for k in dict.fromkeys([*a, *b])]


def aggregate_diff(a: Run, b: Run) -> dict[str, Any]:
    """Headline figures, every census counter that differs, and the last day's stocks."""
    ca, cb = a.manifest.get("census") or {}, b.manifest.get("census") or {}
    fa, fb = _flat(ca), _flat(cb)
    census = [r for r in _rows(fa, fb) if r["diff"] != 0]
    census.sort(key=lambda r: (-abs(r["diff"]), r["what"]))
    return {"headline": _rows(_headline(ca), _headline(cb)), "census": census,
            "last_day": _rows(_last_day(a), _last_day(b))}


# --- subjects ---------------------------------------------------------------------------------


def _list_names_sql(names: list[str]) -> str:
    """A SQL expression naming, in alphabetical order, the lists set in a ``lists`` bitmask."""
    terms = [f"CASE WHEN (CAST(lists AS INTEGER) >> {j}) & 1 = 1 THEN '{n}' END"
             for j, n in sorted(enumerate(names), key=lambda t: t[1])]
    return f"concat_ws(',', {', '.join(terms)})" if terms else "''"


def _digests(run: Run) -> list[str]:
    """SQL selects of per-subject (rows, hash) per table, in story order."""
    selects = []
    for name, cols in STORY_COLUMNS.items():
        selects.append(f"SELECT subject_id, '{name}' AS t, count(*) AS n, "
                       f"sum(hash({', '.join(cols)})) AS h FROM {name} GROUP BY subject_id")
    if run.has("snapshots"):
        names = list((run.manifest.get("policy") or {}).get("lists") or [])
        selects.append("SELECT subject_id, 'snapshots' AS t, count(*) AS n, "
                       f"sum(hash(day, score, grade, {_list_names_sql(names)})) AS h "
                       "FROM snapshots GROUP BY subject_id")
    return selects


def _story_table(run: Run) -> Any:
    return run.sql(" UNION ALL ".join(_digests(run)))


def _arrow(relation: Any) -> Any:
    """A DuckDB relation as a pyarrow Table (DuckDB 1.x and 2.x)."""
    to_table = getattr(relation, "to_arrow_table", None)
    if to_table is not None:
        return to_table()
    result = relation.arrow()
    return result.read_all() if hasattr(result, "read_all") else result


def _pylist(relation: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = _arrow(relation).to_pylist()
    return rows


def _memory(a: Run, b: Run) -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect(":memory:")
    con.register("sa", _story_table(a))
    con.register("sb", _story_table(b))
    return con


def changed_subjects(run_a: str | Path | Run, run_b: str | Path | Run) -> np.ndarray:
    """Ids of the subjects whose stories differ between two ledger runs (sorted)."""
    import numpy as np

    a, b = open_run(run_a), open_run(run_b)
    check_comparable(a, b)
    _need_ledgers(a, b)
    con = _memory(a, b)
    try:
        tab = _arrow(con.sql(_CHANGED))
    finally:
        con.close()
    return np.asarray(tab.column(0).to_numpy(zero_copy_only=False), dtype=np.int64)


_CHANGED = """
    SELECT DISTINCT coalesce(sa.subject_id, sb.subject_id) AS subject_id
    FROM sa FULL OUTER JOIN sb ON sa.subject_id = sb.subject_id AND sa.t = sb.t
    WHERE sa.n IS DISTINCT FROM sb.n OR sa.h IS DISTINCT FROM sb.h
    ORDER BY 1"""


def _need_ledgers(a: Run, b: Run) -> None:
    if not (has_ledger(a) and has_ledger(b)):
        missing = a.path.name if not has_ledger(a) else b.path.name
        raise UserError(f"the run {missing} has no ledger; subject-level comparison needs "
                        "both runs made with --ledger")


def _on_lists(run: Run) -> Any:
    """(subject_id, list, reason) for every subject on a list during the reported days: the
    rule of its first entry, or BEFORE when it was already listed when they began."""
    names = list((run.manifest.get("policy") or {}).get("lists") or [])
    parts = ["SELECT subject_id, list, arg_min(reason, day) AS reason FROM list_events "
             "WHERE event = 'enter' GROUP BY ALL"]
    if run.has("snapshots"):
        for j, n in enumerate(names):
            parts.append(f"SELECT DISTINCT subject_id, '{n}' AS list, '{BEFORE}' AS reason "
                         f"FROM snapshots WHERE (CAST(lists AS INTEGER) >> {j}) & 1 = 1")
    return run.sql(f"SELECT subject_id, list, min(reason) FILTER (WHERE reason <> '{BEFORE}') "
                   f"AS r1, any_value(reason) AS r2 FROM ({' UNION ALL '.join(parts)}) "
                   "GROUP BY ALL")


def subject_diff(a: Run, b: Run) -> dict[str, Any]:
    """Who changed, the grade transition matrix, who entered or left each list and why."""
    if not (has_ledger(a) and has_ledger(b)):
        return {"available": False,
                "note": "subject-level comparison needs both runs made with --ledger"}
    con = _memory(a, b)
    try:
        changed = _arrow(con.sql(_CHANGED)).column(0).to_pylist()
        ncit = int((a.manifest.get("population") or {}).get("citizens", 0))
        out: dict[str, Any] = {
            "available": True,
            "changed": len(changed),
            "changed_citizens": sum(1 for s in changed if s < ncit),
            "changed_businesses": sum(1 for s in changed if s >= ncit),
            "changed_sample": changed[:SAMPLE],
        }
        out["grade_transitions"] = _transitions(a, b, con)
        con.register("la", _on_lists(a))
        con.register("lb", _on_lists(b))
        out["lists"] = _list_moves(con)
        out["rules"] = _rule_diff(a, b, con)
    finally:
        con.close()
    return out


def _transitions(a: Run, b: Run, con: Any) -> list[dict[str, Any]]:
    if not (a.has("snapshots") and b.has("snapshots")):
        return []
    q = ("SELECT subject_id, kind, region, grade FROM snapshots "
         "WHERE day = (SELECT max(day) FROM snapshots)")
    con.register("ga", a.sql(q))
    con.register("gb", b.sql(q))
    return _pylist(con.sql("""
        SELECT ga.kind, ga.region, ga.grade AS "from", gb.grade AS "to", count(*) AS subjects
        FROM ga JOIN gb USING (subject_id) GROUP BY ALL ORDER BY 1, 2, 3, 4"""))


def _list_moves(con: Any) -> list[dict[str, Any]]:
    rows = _pylist(con.sql(f"""
        SELECT coalesce(la.list, lb.list) AS list,
               CASE WHEN la.subject_id IS NULL THEN 'entered' ELSE 'left' END AS change,
               coalesce(CASE WHEN la.subject_id IS NULL THEN coalesce(lb.r1, lb.r2)
                             ELSE coalesce(la.r1, la.r2) END, '{BEFORE}') AS rule,
               count(*) AS subjects,
               list(coalesce(la.subject_id, lb.subject_id) ORDER BY
                    coalesce(la.subject_id, lb.subject_id))[1:{SAMPLE}] AS sample
        FROM la FULL OUTER JOIN lb ON la.subject_id = lb.subject_id AND la.list = lb.list
        WHERE la.subject_id IS NULL OR lb.subject_id IS NULL
        GROUP BY ALL ORDER BY 1, 2, 4 DESC"""))
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault(r["list"], {"list": r["list"], "entered": 0, "left": 0,
                                           "entered_by_rule": [], "left_by_rule": []})
        entry[r["change"]] += int(r["subjects"])
        entry[f"{r['change']}_by_rule"].append(
            {"rule": r["rule"], "subjects": int(r["subjects"]), "sample": r["sample"]})
    return list(out.values())


def _rule_diff(a: Run, b: Run, con: Any) -> list[dict[str, Any]]:
    q = ("SELECT rule, count(*) AS changes, count(DISTINCT subject_id) AS subjects, "
         "sum(points) AS net FROM ledger WHERE points <> 0 GROUP BY rule")
    con.register("ra", a.sql(q))
    con.register("rb", b.sql(q))
    rows: list[dict[str, Any]] = _pylist(con.sql("""
        SELECT coalesce(ra.rule, rb.rule) AS rule,
               coalesce(ra.subjects, 0) AS subjects_a, coalesce(rb.subjects, 0) AS subjects_b,
               coalesce(ra.net, 0) AS points_a, coalesce(rb.net, 0) AS points_b
        FROM ra FULL OUTER JOIN rb ON ra.rule = rb.rule
        WHERE ra.rule IS NULL OR rb.rule IS NULL OR ra.net <> rb.net
              OR ra.subjects <> rb.subjects OR ra.changes <> rb.changes
        ORDER BY abs(coalesce(rb.net, 0) - coalesce(ra.net, 0)) DESC, 1"""))
    for r in rows:
        r["points_a"], r["points_b"] = int(r["points_a"]), int(r["points_b"])
    return rows


def compare_runs(run_a: str | Path | Run, run_b: str | Path | Run) -> dict[str, Any]:
    """Compare two runs of the same population and seed (JSON-ready)."""
    a, b = open_run(run_a), open_run(run_b)
    check_comparable(a, b)
    start, days, burn = calendar_of(a)
    return {
        "a": _label(a),
        "b": _label(b),
        "period": {"start": start.isoformat(), "days": days, "burn_in_days": burn},
        "seed": a.manifest.get("seed"),
        "same_policy": _label(a)["hash"] == _label(b)["hash"],
        "grade_scales": {"a": (a.manifest.get("policy") or {}).get("grades") or {},
                         "b": (b.manifest.get("policy") or {}).get("grades") or {}},
        "aggregate": aggregate_diff(a, b),
        "subjects": subject_diff(a, b),
    }


# --- the changed subjects, whole, to a file ---------------------------------------------------

#: Columns of the ``subjects`` table that an export of changed subjects carries.
DEMOGRAPHICS = ("kind", "region", "household", "income_band", "education_band", "age_band",
                "urban", "sector", "size_band", "representative", "uscc")
EXPORT_FORMATS = {".csv": "csv", ".parquet": "parquet"}


def export_format(out: Path) -> str:
    """``csv`` or ``parquet`` from a file's suffix; anything else is a :class:`UserError`."""
    fmt = EXPORT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UserError(f"cannot write {out}: name a .csv or a .parquet file")
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: the folder {out.parent} does not exist")
    return fmt


def _per_subject(run: Run) -> dict[str, Any]:
    """Per subject of one run: points, denials, wrongful denials, list entries, and the last
    snapshot's score, grade and lists."""
    names = list((run.manifest.get("policy") or {}).get("lists") or [])
    out = {
        "pts": run.sql("SELECT subject_id, sum(points)::BIGINT AS points FROM ledger GROUP BY 1"),
        "dec": run.sql("SELECT subject_id, count(*) FILTER (WHERE outcome = 'denied') AS denied, "
                       "count(*) FILTER (WHERE wrongful) AS wrongful FROM decisions GROUP BY 1"),
        "ent": run.sql("SELECT subject_id, count(*) AS list_entries FROM list_events "
                       "WHERE event = 'enter' GROUP BY 1"),
    }
    if run.has("snapshots"):
        out["snap"] = run.sql(f"SELECT subject_id, score, grade, {_list_names_sql(names)} AS lists "
                              "FROM snapshots WHERE day = (SELECT max(day) FROM snapshots)")
    return out


def export_changed(run_a: str | Path | Run, run_b: str | Path | Run, out: str | Path) -> int:
    """Write every subject whose story differs between two ledger runs to ``out`` (CSV or
    Parquet, by its suffix), one row each with its demographics (from the ``subjects`` table
    where the run has one) and, for A and B, its last score, grade and lists, net points,
    denials, wrongful denials and list entries. Returns the number of rows.

    DuckDB streams the rows to a temporary file beside ``out``, renamed into place at the
    end, so a failure leaves no half-written file."""
    import os

    out = Path(out)
    fmt = export_format(out)
    a, b = open_run(run_a), open_run(run_b)
    check_comparable(a, b)
    _need_ledgers(a, b)
    con = _memory(a, b)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        con.register("changed", _arrow(con.sql(_CHANGED)))
        select = ["c.subject_id"]
        joins = []
        if a.has("subjects"):
            have = set(a.columns("subjects"))
            cols = [c for c in DEMOGRAPHICS if c in have]
            con.register("demo", a.sql(f"SELECT subject_id, {', '.join(cols)} FROM subjects"))
            select += [f"d.{c}" for c in cols]
            joins.append("LEFT JOIN demo d ON d.subject_id = c.subject_id")
        else:
            ncit = int((a.manifest.get("population") or {}).get("citizens", 0))
            select.append(f"CASE WHEN c.subject_id < {ncit} THEN 'citizen' ELSE 'business' END "
                          "AS kind")
        for tag, run in (("a", a), ("b", b)):
            parts = _per_subject(run)
            for key, tab in parts.items():
                con.register(f"{key}_{tag}", tab)
                joins.append(f"LEFT JOIN {key}_{tag} ON {key}_{tag}.subject_id = c.subject_id")
            if "snap" in parts:
                select += [f"snap_{tag}.score AS score_{tag}", f"snap_{tag}.grade AS grade_{tag}",
                           f"snap_{tag}.lists AS lists_{tag}"]
            select += [f"coalesce(pts_{tag}.points, 0) AS points_{tag}",
                       f"coalesce(dec_{tag}.denied, 0) AS denied_{tag}",
                       f"coalesce(dec_{tag}.wrongful, 0) AS wrongful_{tag}",
                       f"coalesce(ent_{tag}.list_entries, 0) AS list_entries_{tag}"]
        query = (f"SELECT {', '.join(select)} FROM changed c {' '.join(joins)} "
                 "ORDER BY c.subject_id")
        options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER"
        target = str(tmp).replace("'", "''")
        con.execute(f"COPY ({query}) TO '{target}' ({options})")
        n = int(con.sql("SELECT count(*) FROM changed").fetchall()[0][0])
        os.replace(tmp, out)
        return n
    finally:
        con.close()
        if tmp.exists():
            tmp.unlink()
