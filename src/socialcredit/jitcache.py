"""Where numba keeps compiled kernels, keyed by the source of everything they inline.

numba's on-disk cache checks only the file that defines a jitted function, so a change to a
function it calls (the day step, the draws, the population) would leave a stale kernel in
the cache. Importing this module points numba at ``<base>/<digest of those sources>``; the
base is ``$NUMBA_CACHE_DIR`` or ``~/.cache/socialcredit/numba``. Every process that uses the
same base shares compiled kernels (DESIGN 9: warm caches across processes and workers).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

_HERE = Path(__file__).parent
_SOURCES = ["rng.py", "population.py", "kernel/step.py", "kernel/group.py", "kernel/atomic.py",
            "kernel/layout.py", "kernel/cpu.py"]


def source_digest() -> str:
    h = hashlib.sha256(numba.__version__.encode())
    for name in _SOURCES:
        p = _HERE / name
        if p.exists():
            h.update(name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("NUMBA_CACHE_DIR") or str(Path.home() / ".cache" / "socialcredit" / "numba")
    return Path(base) / source_digest()


setattr(numba.config, "CACHE_DIR", str(cache_dir()))  # noqa: B010  (numba reads it at compile)
