"""Where numba keeps compiled kernels, keyed by the source of everything they inline.

numba's on-disk cache checks only the file that defines a jitted function, so a change to a
function it calls (the day step, the draws, the population) would leave a stale kernel in
the cache. Importing this module points numba at ``<base>/<digest of those sources>``.

The base is one place whoever starts the command (``make run``, an activated virtualenv, a
test, a notebook): ``$XDG_CACHE_HOME/socialcredit/numba``, by default
``~/.cache/socialcredit/numba``. ``$NUMBA_CACHE_DIR`` overrides it, for a cluster whose workers
share a folder. Every process that uses the same base shares compiled kernels (DESIGN 9: warm
caches across processes and workers).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

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


def cache_base() -> Path:
    """The folder under which compiled kernels are kept (see the module's docstring)."""
    base = os.environ.get("NUMBA_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return root / "socialcredit" / "numba"


def cache_dir() -> Path:
    return cache_base() / source_digest()


def is_compiled(*dispatchers: Any) -> bool:
    """Whether every one of these numba functions is compiled already, in this process or in
    the on-disk cache, so that calling it loads rather than compiles.

    It reads numba's cache index (an internal of numba); if that cannot be read it answers
    True, so that a caller says nothing rather than something false."""
    for d in dispatchers:
        if getattr(d, "overloads", None):
            continue
        try:
            if not d._cache._cache_file._load_index():
                return False
        except Exception:  # noqa: BLE001 - another numba: no answer is better than a wrong one
            continue
    return True


setattr(numba.config, "CACHE_DIR", str(cache_dir()))  # noqa: B010  (numba reads it at compile)
