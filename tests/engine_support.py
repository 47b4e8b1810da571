"""Running a model in memory for tests: one thread, every event kept."""

from __future__ import annotations

from typing import Any

import numba

from socialcredit.engine import MemoryRun, run_memory
from socialcredit.kernel import layout as LY


def run_every_event(model: Any) -> MemoryRun:
    """The whole run of ``model`` with every event recorded, on one thread (results are the
    same on any number; one thread is quickest at test sizes), numba's thread count restored."""
    before = numba.get_num_threads()
    try:
        return run_memory(model, emit=LY.EMIT_ALL, threads=1)
    finally:
        numba.set_num_threads(before)
