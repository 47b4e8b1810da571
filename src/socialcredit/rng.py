"""Counter-based random draws (DESIGN 2.9).

Every draw is a pure function of ``(seed, stream, day, subject, draw)``. Streams and draws are
named by meaning: :func:`key` turns a name such as ``"acts"`` or ``"channel:camera"`` into a
64-bit constant, so adding an act to the catalogue or changing a policy never shifts another
draw. There is no generator state to carry, split or checkpoint.

Every yes/no is an integer comparison: :func:`threshold` turns a probability into a 32-bit
threshold once, in Python, and the kernels compare the top 32 bits of a hash with it.
The mixing function is SplitMix64's finaliser, which passes BigCrush as a hash of a counter.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numba.extending import register_jitable

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_MASK32 = np.uint64(0xFFFFFFFF)

#: Probability 1 as a 32-bit threshold; thresholds live in [0, ONE].
ONE = 1 << 32


def key(name: str) -> int:
    """A stable 64-bit constant for a stream or draw name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def threshold(p: float) -> int:
    """A probability as an integer threshold: an event fires when ``u32 < threshold``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability {p} is outside [0, 1]")
    return min(int(round(p * ONE)), ONE)


@register_jitable(inline="always")
def mix(z):  # type: ignore[no-untyped-def]
    """SplitMix64 finaliser of a uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@register_jitable(inline="always")
def day_key(seed, stream, day):  # type: ignore[no-untyped-def]
    """Key of one stream on one day; computed once per day outside the per-subject loop."""
    h = mix(np.uint64(seed) + np.uint64(stream) * _GOLDEN)
    return mix(h ^ (np.uint64(day) * _M2))


@register_jitable(inline="always")
def subject_hash(dkey, subject):  # type: ignore[no-untyped-def]
    """64 random bits for one subject under a day key."""
    return mix(dkey ^ (np.uint64(subject) * _GOLDEN))


@register_jitable(inline="always")
def sub_hash(h, draw):  # type: ignore[no-untyped-def]
    """A further, independent 64 bits for a named draw within a subject's day."""
    return mix(h ^ (np.uint64(draw) * _M1))


@register_jitable(inline="always")
def hi32(h):  # type: ignore[no-untyped-def]
    """Top 32 bits of a hash as a uint64 in [0, 2**32)."""
    return h >> _S32


@register_jitable(inline="always")
def lo32(h):  # type: ignore[no-untyped-def]
    """Bottom 32 bits of a hash as a uint64 in [0, 2**32)."""
    return h & _MASK32


def draw_u32(seed: int, stream: int, day: int, subject: int, draw: int | None = None) -> int:
    """Pure-Python reference of a draw's top 32 bits (for tests and for population code)."""
    with np.errstate(over="ignore"):
        h = subject_hash(day_key(np.uint64(seed), np.uint64(stream), np.uint64(day)), np.uint64(subject))
        if draw is not None:
            h = sub_hash(h, np.uint64(draw))
        return int(hi32(h))
