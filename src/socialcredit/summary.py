"""Headline figures of a finished run, from its manifest and the last day of ``daily``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summarize(path: str | Path) -> dict[str, Any]:
    """The figures the CLI prints at the end of a run (and the explorer lists)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from socialcredit.store import Run

    run = Run.open(path)
    m = run.manifest
    census = m["census"]
    dataset = ds.dataset(str(run.path / "daily"), format="parquet")
    wanted = [n for n in dataset.schema.names
              if n in ("day", "region", "kind") or n.startswith(("listed_", "grade_"))]
    daily = dataset.to_table(columns=wanted)
    last = daily.filter(pc.equal(daily["day"], pc.max(daily["day"])))
    lists = {name: int(pc.sum(last[f"listed_{name}"]).as_py() or 0)
             for name in m["policy"]["lists"]}
    decisions = sum(census.get("decisions", {}).values())
    denied = sum(v for k, v in census.get("decisions", {}).items() if k.startswith("denied_"))
    fast = sum(v for k, v in census.get("decisions", {}).items() if k.startswith("fast_tracked_"))
    wrongful = sum(census.get("wrongful", {}).values())
    records_true = sum(census.get("records_true", {}).values())
    records_false = sum(census.get("records_false", {}).values())
    grades: dict[str, dict[str, float]] = {}
    order: dict[str, int] = {}
    cit = last.filter(pc.equal(last["kind"].cast("string"), "citizen"))
    for reg in m["population"]["regions"]:
        rid = reg["id"]
        names = m["policy"]["grades"].get(rid, {}).get("citizen") or []
        if not names:
            continue
        rows = cit.filter(pc.equal(cit["region"].cast("string"), rid))
        counts = {n: int(pc.sum(rows[f"grade_{k}"]).as_py() or 0) for k, n in enumerate(names)}
        total = sum(counts.values())
        if total:
            grades[rid] = {n: c / total for n, c in counts.items()}
            for k, n in enumerate(names):
                order.setdefault(n, k)
    pop = m["population"]
    return {
        "path": str(run.path),
        "scale": float(pop.get("scale", 1.0) or 1.0),
        "citizens": pop["citizens"],
        "businesses": pop["businesses"],
        "days": m["calendar"]["days"],
        "start": m["calendar"]["start"],
        "burn_in": m["calendar"]["burn_in_days"],
        "acts": sum(census.get("acts", {}).values()),
        "records": records_true + records_false,
        "records_false": records_false,
        "false_share": records_false / max(1, records_true + records_false),
        "lists": lists,
        "decisions": decisions,
        "denied": denied,
        "fast_tracked": fast,
        "wrongful": wrongful,
        "wrongful_share": wrongful / max(1, denied),
        "grades": grades,
        "grade_order": order,
        "seconds": float(m.get("timings", {}).get("total_s", 0.0)),
    }
