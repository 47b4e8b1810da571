"""Headline figures of a finished run, from its manifest and the last day of ``daily``.

A scaled scenario (``china``: about a million citizens for 1.41 billion people) stands for a
larger real population; :func:`estimates` says what each count would be there, in the unit
it counts: citizens as people, businesses as businesses, a list's members as the people or
businesses it holds, acts, records and decisions as themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The headline counts that :func:`estimates` scales, with the unit each counts.
EVENT_UNITS = {"acts": "acts", "records": "records", "decisions": "decisions",
               "denied": "decisions", "fast_tracked": "decisions", "throttled": "decisions",
               "throttled_days": "subject-days"}
#: The unit of a subject kind's count in the real population.
KIND_UNITS = {"citizen": "people", "business": "businesses"}


def stands_for(manifest: dict[str, Any]) -> dict[str, float]:
    """The real ``people`` and ``businesses`` a run's population stands for.

    Each region stands for its ``population`` (or its citizens divided by the scenario's
    ``scale``) and for ``businesses_per_1000`` businesses per thousand of those people, the
    rate its simulated businesses were drawn at. A manifest without a scenario falls back to
    the simulated counts divided by ``scale``."""
    pop = manifest["population"]
    scale = float(pop.get("scale", 1.0) or 1.0)
    regions = (manifest.get("scenario") or {}).get("regions") or []
    try:
        people = [float(r["population"]) if r.get("population") is not None
                  else float(r["citizens"]) / scale for r in regions]
        businesses = [n * float(r["businesses_per_1000"]) / 1000.0
                      for n, r in zip(people, regions, strict=True)]
    except (KeyError, TypeError, ValueError):
        regions = []
    if not regions:
        return {"people": pop["citizens"] / scale, "businesses": pop["businesses"] / scale}
    return {"people": sum(people), "businesses": sum(businesses)}


def estimates(s: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """What each headline count of :func:`summarize` would be in the real population, with
    its unit: ``{"citizens": (1409778720.0, "people"), "acts": (…, "acts"), …}``, lists as
    ``"list:NAME"``. Citizens and list members of either kind scale by real people (or
    businesses) per simulated one; acts, records and decisions by real people per simulated
    citizen, as the events of a population grow with it. Empty when the run is not scaled."""
    if s["scale"] == 1.0:
        return {}
    real = s["stands_for"]
    per = {"citizen": real["people"] / max(1, s["citizens"]),
           "business": real["businesses"] / s["businesses"] if s["businesses"]
           else real["people"] / max(1, s["citizens"])}
    out: dict[str, tuple[float, str]] = {
        "citizens": (real["people"], KIND_UNITS["citizen"]),
        "businesses": (real["businesses"], KIND_UNITS["business"]),
    }
    for key, unit in EVENT_UNITS.items():
        out[key] = (s[key] * per["citizen"], unit)
    for name, n in s["lists"].items():
        kind = s["list_subjects"].get(name)
        if kind in per:
            out[f"list:{name}"] = (n * per[kind], KIND_UNITS[kind])
        else:  # a run written before list_subjects, with nobody on the list at the end
            out[f"list:{name}"] = (n * per["citizen"], "subjects")
    return out


def summarize(path: str | Path) -> dict[str, Any]:
    """The figures the CLI prints at the end of a run (and the explorer lists)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from socialcredit.store import Run

    run = Run.open(path)
    m = run.manifest
    census = m["census"]
    # the parts of ``daily`` file by file (pyarrow.dataset would import pandas, 0.2 s)
    parts = [pq.ParquetFile(p) for p in sorted((run.path / "daily").glob("*.parquet"))]
    names = parts[0].schema_arrow.names if parts else []
    wanted = [n for n in names
              if n in ("day", "region", "kind") or n.startswith(("listed_", "grade_"))]
    daily = pa.concat_tables([f.read(columns=wanted) for f in parts])
    last = daily.filter(pc.equal(daily["day"], pc.max(daily["day"])))
    # the last day's few rows as Python values (comparing Arrow columns with Python strings
    # would import pandas)
    rows = last.to_pylist()
    lists = {name: int(sum(r[f"listed_{name}"] or 0 for r in rows))
             for name in m["policy"]["lists"]}
    list_subjects = dict(m["policy"].get("list_subjects") or {})
    for name in lists:  # runs written before the manifest named them: whoever is on the list
        if name not in list_subjects:
            kinds = {r["kind"] for r in rows if r[f"listed_{name}"]}
            if len(kinds) == 1:
                list_subjects[name] = kinds.pop()
    decisions = sum(census.get("decisions", {}).values())
    denied = sum(v for k, v in census.get("decisions", {}).items() if k.startswith("denied_"))
    fast = sum(v for k, v in census.get("decisions", {}).items() if k.startswith("fast_tracked_"))
    wrongful = sum(census.get("wrongful", {}).values())
    throttled = int(census.get("throttled_grants", 0))
    records_true = sum(census.get("records_true", {}).values())
    records_false = sum(census.get("records_false", {}).values())
    grades: dict[str, dict[str, float]] = {}
    order: dict[str, int] = {}
    cit = [r for r in rows if r["kind"] == "citizen"]
    for reg in m["population"]["regions"]:
        rid = reg["id"]
        names = m["policy"]["grades"].get(rid, {}).get("citizen") or []
        if not names:
            continue
        here = [r for r in cit if r["region"] == rid]
        counts = {n: int(sum(r[f"grade_{k}"] or 0 for r in here)) for k, n in enumerate(names)}
        total = sum(counts.values())
        if total:
            grades[rid] = {n: c / total for n, c in counts.items()}
            for k, n in enumerate(names):
                order.setdefault(n, k)
    pop = m["population"]
    return {
        "path": str(run.path),
        "scale": float(pop.get("scale", 1.0) or 1.0),
        "stands_for": stands_for(m),
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
        "list_subjects": list_subjects,
        "decisions": decisions,
        "denied": denied,
        "fast_tracked": fast,
        "throttled": throttled,
        "throttled_days": int(census.get("throttled_days", 0)),
        "wrongful": wrongful,
        # wrongful decisions are wrongful denials and throttles (DESIGN 2.7)
        "wrongful_share": wrongful / max(1, denied + throttled),
        "grades": grades,
        "grade_order": order,
        "seconds": float(m.get("timings", {}).get("total_s", 0.0)),
    }
