"""One counter increment for every target.

The day step counts and emits through :func:`atomic_add`. On the CPU each worker owns its
counters, so a plain add is enough; on a GPU (see ``socialcredit.kernel.gpu``) the same call
becomes ``cuda.atomic.add``. Integer addition commutes, so totals are identical either way.
Under numba's CUDA simulator kernels run as Python threads; the Python body takes a lock.
"""

from __future__ import annotations

import threading

from numba.extending import overload

_lock = threading.Lock()


def atomic_add(arr, i, v):  # type: ignore[no-untyped-def]
    """Add ``v`` to ``arr[i]`` and return the old value."""
    with _lock:
        old = arr[i]
        arr[i] = old + v
    return old


@overload(atomic_add, target="cpu")
def _atomic_add_cpu(arr, i, v):  # type: ignore[no-untyped-def]
    def impl(arr, i, v):  # type: ignore[no-untyped-def]
        old = arr[i]
        arr[i] = old + v
        return old

    return impl
