"""Determinism (DESIGN 2.9): the same run gives bit-identical results for any number of
threads, computed whole or in shards of whole groups, and after a crash and a resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from socialcredit.engine import (
    Calendar,
    Shard,
    build_model,
    make_backend,
    new_state,
    run_memory,
    whole,
)
from socialcredit.errors import UserError
from socialcredit.kernel.cpu import FULL_BATCH, SCR_ON, SCREEN_BLOCK
from socialcredit.kernel.layout import (
    EMIT_ALL,
    EMIT_NONE,
    EV_DECISION,
    EV_LEDGER,
    EV_LIST,
    EV_OVERRIDE,
    EXIT_OBLIGATION,
    EXIT_REPAIR,
    EXIT_TERM,
    LIST_ENTER,
    LIST_EXIT,
    LIST_EXTEND,
)
from socialcredit.run import simulate
from socialcredit.scenario import Scenario
from socialcredit.store import Run

FIXTURES = Path(__file__).parent / "fixtures"


def busy_default(*, citizens: int, days: int, burn_in: int, act_scale: float = 4.0) -> Scenario:
    """The default scenario, small and short, its acts a few times as frequent so that lists,
    appeals and decisions happen in a few months (the burn-in crosses a new year)."""
    from socialcredit.catalogue import load_catalogue

    data = Scenario.load("default").to_dict()
    data["burn_in_days"] = burn_in
    data["days"] = days
    data["behaviour"]["acts"] = {a.id: {"rate_per_year": a.rate_per_year * act_scale}
                                 for a in load_catalogue().acts}
    return Scenario.from_dict(data).rescaled(citizens)


@pytest.fixture(scope="module")
def model() -> Any:
    return build_model(busy_default(citizens=6000, days=100, burn_in=40))


@pytest.fixture(scope="module")
def whole_run(model: Any) -> Any:
    return run_memory(model, emit=EMIT_ALL)


def assert_same_events(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b) > 0
    assert sum(x.shape[0] for x in a) > 0, "no events to compare"
    for day, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x.shape == y.shape, f"day {day}: {x.shape[0]} events against {y.shape[0]}"
        assert np.array_equal(x, y), f"day {day}: the events differ"


def test_the_run_does_something(model: Any, whole_run: Any) -> None:
    """The comparisons below are only worth something if the run is eventful."""
    events = np.concatenate(whole_run.events)
    for typ in (EV_LEDGER, EV_LIST, EV_DECISION):
        assert (events[:, 0] == typ).sum() > 50
    assert model.n_businesses > 100


def test_one_and_two_threads_give_identical_results(model: Any, whole_run: Any) -> None:
    before = numba.get_num_threads()
    try:
        one = run_memory(model, emit=EMIT_ALL, threads=1)
        two = run_memory(model, emit=EMIT_ALL, threads=2) if numba.config.NUMBA_NUM_THREADS >= 2 else one
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one.counts, two.counts)
    assert_same_events(one.events, two.events)
    for name in ("st", "pub"):
        assert np.array_equal(one.state[name], two.state[name])
    assert np.array_equal(one.counts, whole_run.counts)
    assert_same_events(one.events, whole_run.events)


def test_the_screening_driver_is_the_step_of_every_subject() -> None:
    """The CPU driver settles most subject-days without the step: the screen, the recheck
    (idle listed subjects included), plain grants. With screening off every subject takes
    the step; the run must be the same, day by day and in the final state. Lists turn over
    within weeks here (``fixtures/quick_lists.yaml``), so that every way of leaving a list,
    and the move from one to another, happens to subjects the recheck has to judge."""
    data = busy_default(citizens=10000, days=120, burn_in=40, act_scale=10.0).to_dict()
    data["reforms"] = [str(FIXTURES / "quick_lists.yaml")]
    model = build_model(Scenario.from_dict(data))
    screened = run_memory(model, emit=EMIT_ALL)
    shard = whole(model)
    state = new_state(model, shard)
    be = make_backend("cpu", model, shard, state, emit=EMIT_ALL)
    assert be.scr[:, SCR_ON].all()
    be.scr[:] = 0  # every subject takes the step
    cal = Calendar(model)
    for t in range(model.total_days):
        res = be.run_day(t, cal)
        assert np.array_equal(res.counts, screened.counts[t]), f"day {t}: the counters differ"
        assert np.array_equal(res.events, screened.events[t]), f"day {t}: the events differ"
    for name in ("st", "pub"):
        assert np.array_equal(state[name], screened.state[name])
    # without events, the driver takes the full steps in batches: the same run again
    batched = run_memory(model, emit=EMIT_NONE)
    assert np.array_equal(batched.counts, screened.counts)
    for name in ("st", "pub"):
        assert np.array_equal(batched.state[name], screened.state[name])
    # worth something only if lists were entered (also from another list), extended and
    # left in every way, and grades forced
    ev = np.concatenate(screened.events)
    lists = ev[ev[:, 0] == EV_LIST]
    exits = set(lists[lists[:, 3] == LIST_EXIT, 4].tolist())
    assert {EXIT_TERM, EXIT_OBLIGATION, EXIT_REPAIR} <= exits
    serious = model.policy.list_names.index("serious_dishonesty")
    assert ((lists[:, 2] == serious) & (lists[:, 3] == LIST_ENTER)).sum() > 20
    assert (lists[:, 3] == LIST_EXTEND).any()
    assert (ev[:, 0] == EV_OVERRIDE).sum() > 5
    assert ((screened.state["pub"][0] & 255) != 0).sum() > 200


def test_full_steps_batched_over_many_blocks_give_the_same_run() -> None:
    """Chunks long enough for several batches of full steps (``FULL_BATCH`` blocks)."""
    model = build_model(busy_default(citizens=300_000, days=12, burn_in=8))
    before = numba.get_num_threads()
    try:
        ordered = run_memory(model, emit=EMIT_ALL, threads=1)
        batched = run_memory(model, emit=EMIT_NONE, threads=1)
    finally:
        numba.set_num_threads(before)
    assert model.n_citizens // 4 > 2 * FULL_BATCH * SCREEN_BLOCK  # four chunks a thread
    assert np.array_equal(batched.counts, ordered.counts)
    for name in ("st", "pub"):
        assert np.array_equal(batched.state[name], ordered.state[name])


@pytest.mark.parametrize("n_shards", [2, 3])
def test_shards_of_whole_groups_give_the_whole_run(model: Any, whole_run: Any, n_shards: int) -> None:
    C = model.n_citizens
    cb, bb = model.population.shard_bounds(n_shards)
    shards = [Shard(int(cb[k]), int(cb[k + 1]), int(bb[k]) - C, int(bb[k + 1]) - C)
              for k in range(n_shards)]
    assert sum(s.size for s in shards) == C + model.n_businesses
    assert all(s.b_hi > s.b_lo for s in shards), "every shard should hold businesses"
    runs = [run_memory(model, s, emit=EMIT_ALL) for s in shards]
    assert np.array_equal(sum(r.counts for r in runs), whole_run.counts)
    merged = []
    for day in range(model.total_days):
        ev = np.concatenate([r.events[day] for r in runs])
        merged.append(ev[np.argsort(ev[:, 1], kind="stable")])
    assert_same_events(merged, whole_run.events)
    # the shards' states, put back in id order, are the whole run's state
    for name in ("st", "pub"):
        whole = whole_run.state[name]
        parts = [r.state[name] for r in runs]
        nc = [s.c_hi - s.c_lo for s in shards]
        if name == "st":
            cit = np.concatenate([p[:n] for p, n in zip(parts, nc, strict=True)])
            bus = np.concatenate([p[n:] for p, n in zip(parts, nc, strict=True)])
            assert np.array_equal(np.concatenate([cit, bus]), whole)
        else:
            cit = np.concatenate([p[:, :n] for p, n in zip(parts, nc, strict=True)], axis=1)
            bus = np.concatenate([p[:, n:] for p, n in zip(parts, nc, strict=True)], axis=1)
            assert np.array_equal(np.concatenate([cit, bus], axis=1), whole)


def test_a_resumed_run_is_the_uninterrupted_run(tmp_path: Path) -> None:
    sc = busy_default(citizens=3000, days=120, burn_in=30)
    kw: dict[str, Any] = dict(ledger=True, checkpoint_every=35)
    full = simulate(sc, out=tmp_path / "full", **kw)
    cut = tmp_path / "cut"
    with pytest.raises(Exception) as info:
        simulate(sc, out=cut, stop_after=70, **kw)
    assert type(info.value).__name__ == "_Stopped"
    assert not cut.exists()
    with pytest.raises(UserError, match="not complete"):
        Run.open(cut)
    resumed = simulate(sc, out=cut, resume=True, **kw)
    a, b = Run.open(full), Run.open(resumed)
    assert a.tables() == b.tables() == sorted(
        ["daily", "records", "ledger", "list_events", "decisions", "restrictions", "snapshots",
         "subjects"])
    for name in a.tables():
        ta, tb = a.table(name), b.table(name)
        # default throttles no connection (tests/test_throttle.py resumes a run that does)
        assert (ta.num_rows == 0) if name == "restrictions" else (ta.num_rows > 0), name
        assert ta.equals(tb), f"the table {name} differs after the resume"
    assert a.manifest["census"] == b.manifest["census"]
    assert a.manifest["policy"]["hash"] == b.manifest["policy"]["hash"]
    a.close()
    b.close()


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path: Path) -> None:
    """A short run writes no checkpoint (they come about once a minute). A process killed in
    the middle of one leaves a partial directory with nothing to continue from: resuming it
    runs it again from the first day and gives the uninterrupted run."""
    import os
    import subprocess
    import sys

    sc = busy_default(citizens=2000, days=60, burn_in=10)
    full = simulate(sc, out=tmp_path / "full", ledger=True)
    cut = tmp_path / "cut"
    script = (
        "import os, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_engine_determinism import busy_default\n"
        "from socialcredit.run import simulate\n"
        "def progress(done, total):\n"
        "    if done == 40:\n"
        "        os._exit(9)  # as a kill would: no clean-up runs\n"
        "simulate(busy_default(citizens=2000, days=60, burn_in=10), out=sys.argv[1],"
        " ledger=True, progress=progress)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(cut), str(Path(__file__).parent)],
                          env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 9, proc.stderr
    assert not cut.exists()
    with pytest.raises(UserError, match="not complete"):
        Run.open(cut)
    resumed = simulate(sc, out=cut, resume=True, ledger=True)
    a, b = Run.open(full), Run.open(resumed)
    assert a.tables() == b.tables() and "ledger" in a.tables()
    for name in a.tables():
        assert a.table(name).equals(b.table(name)), name
    assert a.manifest["census"] == b.manifest["census"]
    a.close()
    b.close()
