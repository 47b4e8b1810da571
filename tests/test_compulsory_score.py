"""The unified score of popular accounts becomes compulsory in 2020 (policies/unified.yaml):
a run across the turn of 2019 and 2020 scores the adults who consented up to 2019-12-31 and
every adult from 2020-01-01, while businesses are scored throughout."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numba

from socialcredit.run import simulate
from socialcredit.scenario import Scenario
from socialcredit.store import Run


def test_the_unified_score_jumps_to_everyone_on_2020_01_01(tmp_path: Path) -> None:
    d = Scenario.load("unified").to_dict()
    d.update(name="across_2020", start="2019-10-01", days=184, burn_in_days=0)  # to 2020-04-01
    before = numba.get_num_threads()
    try:
        path = simulate(Scenario.from_dict(d), out=tmp_path / "run", citizens=2400, threads=1)
    finally:
        numba.set_num_threads(before)
    with Run.open(path) as run:
        rows = run.query("select day, kind, sum(scored) from daily group by day, kind").fetchall()
        scored = {(day, kind): int(n) for day, kind, n in rows}
        adults, consenting, firms = run.query(
            "select count(*) filter (kind = 'citizen' and age >= 1),"
            " count(*) filter (kind = 'citizen' and age >= 1 and consent),"
            " count(*) filter (kind = 'business') from subjects").fetchall()[0]
    assert 0 < consenting < adults
    for day in (dt.date(2019, 10, 1), dt.date(2019, 12, 31)):
        assert scored[(day, "citizen")] == consenting, day
    for day in (dt.date(2020, 1, 1), dt.date(2020, 4, 1)):
        assert scored[(day, "citizen")] == adults, day
    for day in (dt.date(2019, 10, 1), dt.date(2019, 12, 31), dt.date(2020, 1, 1)):
        assert scored[(day, "business")] == firms > 0, day
