"""Finding the members of a subject's group from inside a kernel, without stored ids."""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from socialcredit.population import P_BEND, P_BSTART, P_CEND, P_CSTART, household_start_end


@register_jitable
def represented_range(i, r, rep, popt, first):  # type: ignore[no-untyped-def]
    """Indices in ``rep`` of the businesses whose legal representative is citizen i.

    ``rep`` (the shard's slice, its entry 0 being business subject ``first``) is
    non-decreasing, so they form one contiguous range. The population draws business k of a
    region its representative near citizen k·C/B of the region (``population``), so the search
    starts there, in region ``r``, and gallops outwards: a few reads instead of a binary search
    over every business. Where the guess is wrong the answer is still exact, only slower."""
    n = rep.shape[0]
    if n == 0:
        return 0, 0
    cs = popt[r, P_CSTART]
    nc = popt[r, P_CEND] - cs
    nb = popt[r, P_BEND] - popt[r, P_BSTART]
    k = popt[r, P_BSTART] - first
    if nc > 0:
        k += ((i - cs) * nb) // nc
    k = min(max(k, 0), n - 1)
    if np.int64(rep[k]) < i:
        # the first business represented by i (or by a later citizen) lies after k
        lo = k + 1
        step = 1
        p = k + 1
        while p < n and np.int64(rep[p]) < i:
            lo = p + 1
            step <<= 1
            p = k + step
        hi = min(p, n)
    else:
        hi = k
        step = 1
        p = k - 1
        while p >= 0 and np.int64(rep[p]) >= i:
            hi = p
            step <<= 1
            p = k - step
        lo = max(p + 1, 0)
    while lo < hi:
        mid = (lo + hi) >> 1
        if np.int64(rep[mid]) < i:
            lo = mid + 1
        else:
            hi = mid
    end = lo
    while end < n and np.int64(rep[end]) == i:
        end += 1
    return lo, end


@register_jitable
def household_range(i, popt):  # type: ignore[no-untyped-def]
    """Citizen ids [start, end) of citizen i's household."""
    return household_start_end(i, popt)
