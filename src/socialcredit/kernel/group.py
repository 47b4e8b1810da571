"""Finding the members of a subject's group from inside a kernel, without stored ids."""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from socialcredit.population import household_start_end


@register_jitable
def represented_range(i, rep):  # type: ignore[no-untyped-def]
    """Indices in ``rep`` of the businesses whose legal representative is citizen i.

    ``rep`` (the shard's slice) is non-decreasing, so they form one contiguous range found
    by binary search."""
    lo = 0
    hi = rep.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if np.int64(rep[mid]) < i:
            lo = mid + 1
        else:
            hi = mid
    first = lo
    hi = rep.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if np.int64(rep[mid]) <= i:
            lo = mid + 1
        else:
            hi = mid
    return first, lo


@register_jitable
def household_range(i, popt):  # type: ignore[no-untyped-def]
    """Citizen ids [start, end) of citizen i's household."""
    return household_start_end(i, popt)
