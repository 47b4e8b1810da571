import numpy as np
from numba import njit

from socialcredit import rng


@njit(cache=False)
def _draws(seed, stream, day, n):
    dk = rng.day_key(np.uint64(seed), np.uint64(stream), np.uint64(day))
    out = np.empty(n, np.uint64)
    for i in range(n):
        out[i] = rng.hi32(rng.subject_hash(dk, np.uint64(i)))
    return out


def test_jit_matches_python_reference():
    stream = rng.key("acts")
    jit = _draws(42, stream, 17, 50)
    ref = [rng.draw_u32(42, stream, 17, i) for i in range(50)]
    assert [int(x) for x in jit] == ref


def test_draws_are_uniform_enough():
    u = _draws(1, rng.key("acts"), 3, 200_000).astype(np.float64) / 2**32
    assert abs(u.mean() - 0.5) < 0.005
    hist, _ = np.histogram(u, bins=10, range=(0, 1))
    assert hist.min() > 19_000 and hist.max() < 21_000


def test_streams_are_named_and_stable():
    assert rng.key("acts") == rng.key("acts")
    assert rng.key("acts") != rng.key("channel:camera")
    assert rng.draw_u32(1, rng.key("a"), 0, 0) != rng.draw_u32(2, rng.key("a"), 0, 0)


def test_threshold_bounds():
    assert rng.threshold(0.0) == 0
    assert rng.threshold(1.0) == rng.ONE
    assert rng.threshold(0.5) == 2**31
