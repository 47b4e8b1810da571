"""Benchmark: the explorer on a run of 1 M citizens with the ledger on — a subject's page at
the 95th percentile over 100 random subjects (target, issue "The explorer": under 200 ms).

    .venv/bin/python benchmarks/bench_serve.py [--run DIR]
        [--citizens 1000000] [--days N] [--subjects 100] [--out bench-results]

Without ``--run`` it makes the run first (``socialcredit run --citizens 1000000 --ledger``,
the default scenario's two years after its year of burn-in) under a temporary folder, and
deletes it afterwards. The explorer is served by uvicorn on a free local port and asked over
HTTP, as a browser asks it: a subject's page is the HTML page plus its credit file
(``GET /runs/RUN/subjects/ID`` and ``GET /api/runs/RUN/subjects/ID``; the scripts and styles
are cached by the browser and not counted). Measured:

- ``index_build_s``: the first request about the run starts copying the per-subject tables
  into memory, sorted by subject (see ``socialcredit.web.index``); until that is done, a
  credit file is read from the Parquet files directly (``cold_*``: a few requests then);
- the 100 subjects (drawn with a fixed seed, citizens and businesses alike) after the index
  is built: p50, p95 and the largest time of the page, and of the credit file alone;
- for information, the overview, a list page and the policy page.

Figures go to ``bench-results/bench_serve.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TARGET_P95_MS = 200.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q * (len(ordered) - 1)))))
    return ordered[k]


def _ms(x: float) -> float:
    return round(1000 * x, 2)


def make_run(folder: Path, citizens: int, days: int | None) -> tuple[Path, float]:
    from socialcredit.run import simulate

    # load numba's compiled kernels first (not timed as part of the run)
    simulate("default", out=folder / "warm", citizens=2000, days=5, ledger=True)
    shutil.rmtree(folder / "warm", ignore_errors=True)
    t = time.perf_counter()
    path = simulate("default", out=folder / "serve-1m", citizens=citizens, days=days,
                    ledger=True)
    return Path(path), time.perf_counter() - t


def serve(folder: Path) -> tuple[Any, str, Any]:
    import uvicorn

    from socialcredit.web import create_app

    app = create_app(folder)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the explorer did not start")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}", app


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="an existing ledger run to serve")
    ap.add_argument("--citizens", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=None, help="default: the scenario's")
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    args = ap.parse_args()

    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="socialcredit-bench-serve-"))
    result: dict[str, Any] = {
        "benchmark": "explorer: a subject's page on a 1 M-citizen ledger run",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "target_p95_ms": TARGET_P95_MS,
    }
    try:
        if args.run is None:
            run_path, seconds = make_run(tmp, args.citizens, args.days)
            result["run_made_s"] = round(seconds, 1)
            served = tmp
        else:
            run_path = args.run.resolve()
            served = run_path.parent
        manifest = json.loads((run_path / "manifest.json").read_text())
        pop = manifest["population"]
        total = int(pop["citizens"]) + int(pop["businesses"])
        result["run"] = {
            "command": (f"socialcredit run --citizens {pop['citizens']} --ledger"
                        + (f" --days {args.days}" if args.days else "")),
            "citizens": pop["citizens"], "businesses": pop["businesses"],
            "days": manifest["calendar"]["days"],
            "burn_in_days": manifest["calendar"]["burn_in_days"],
            "rows": manifest.get("row_counts", {}),
            "bytes_on_disk": sum(p.stat().st_size for p in run_path.rglob("*") if p.is_file()),
        }
        server, base, app = serve(served)
        run_id = run_path.name
        rng = random.Random(args.seed)
        subjects = [rng.randrange(total) for _ in range(args.subjects)]
        with httpx.Client(base_url=base, timeout=120) as client:
            t0 = time.perf_counter()
            r = client.get(f"/api/runs/{run_id}")  # starts the index
            r.raise_for_status()
            result["first_run_request_ms"] = _ms(time.perf_counter() - t0)
            handle = app.state.catalog.get(run_id)
            index = handle.index()
            cold = []
            for sid in subjects[:3]:
                t = time.perf_counter()
                client.get(f"/api/runs/{run_id}/subjects/{sid}").raise_for_status()
                cold.append(time.perf_counter() - t)
            result["cold_credit_file_ms"] = [_ms(x) for x in cold]
            result["cold_served_from_index"] = index.ready
            index.wait()
            result["index_build_s"] = round(index.build_seconds or 0.0, 2)
            handle.population()  # generated beside the index, in the background
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            result["peak_rss_bytes_process"] = rss
            mem = index.con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()")
            result["index_memory_bytes"] = int(mem.fetchone()[0] or 0)

            page: list[float] = []
            credit: list[float] = []
            events = []
            for sid in subjects:
                t = time.perf_counter()
                h = client.get(f"/runs/{run_id}/subjects/{sid}")
                t1 = time.perf_counter()
                f = client.get(f"/api/runs/{run_id}/subjects/{sid}")
                t2 = time.perf_counter()
                if h.status_code != 200 or f.status_code != 200:
                    raise SystemExit(f"subject {sid}: {h.status_code} {f.status_code} {f.text}")
                page.append(t2 - t)
                credit.append(t2 - t1)
                events.append(sum(len(d["events"]) for d in f.json()["days"]))
            result["subjects"] = {
                "n": len(subjects), "seed": args.seed,
                "page_p50_ms": _ms(statistics.median(page)),
                "page_p95_ms": _ms(_pct(page, 0.95)),
                "page_max_ms": _ms(max(page)),
                "credit_file_p50_ms": _ms(statistics.median(credit)),
                "credit_file_p95_ms": _ms(_pct(credit, 0.95)),
                "events_per_subject_mean": round(statistics.mean(events), 1),
                "events_per_subject_max": max(events),
            }
            result["meets_target"] = result["subjects"]["page_p95_ms"] < TARGET_P95_MS

            other = {}
            lists = manifest["policy"]["lists"]
            for name, path in (("overview", f"/api/runs/{run_id}/overview"),
                               ("overview_region", f"/api/runs/{run_id}/overview"
                                                   "?region=rongcheng&group=income:0"),
                               ("list_page", f"/api/runs/{run_id}/lists/{lists[0]}"),
                               ("policy", f"/api/runs/{run_id}/policy"),
                               ("runs", "/api/runs")):
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    client.get(path).raise_for_status()
                    times.append(time.perf_counter() - t)
                other[name] = {"first_ms": _ms(times[0]), "again_ms": _ms(min(times[1:]))}
            result["other_pages"] = other
        server.should_exit = True
        app.state.catalog.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_serve.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
