"""The synthetic population (DESIGN 2.2): citizens, households, businesses, groups and shards.

Every attribute is a pure function of ``(seed, region, local index)`` through counter-based
draws (:mod:`socialcredit.rng`), so the CPU, a GPU, a shard or a single replayed group all
produce the identical subject. Nothing per subject is stored but three arrays:
``region`` (uint8), ``bands`` (uint8) and, for businesses, ``rep`` (uint32).

Ids: citizens ``0 … C−1``, businesses ``C … C+B−1``. Each region owns a contiguous range of
citizens (a multiple of 8) and a contiguous range of businesses, in scenario order.

Households are contiguous id ranges with no stored id: a region's citizens are cut into blocks
of 8 ids and each block is partitioned into households by draws keyed on
``(seed, region, block)``. A household's first member is an adult, so children (age band 0)
only live with an adult.

The jitable functions below (``register_jitable``: integers only, no allocation) take the
population table ``popt`` — an int64[R, POPT_WIDTH] array built by :func:`population_table`
whose columns are the ``P_*`` constants — and work unchanged in a numba CPU loop, a
numba-cuda kernel, or from Python through the small ``njit`` wrappers at the bottom.

Citizen ``bands`` byte: bits 0–1 income band, 2–3 education band, 4–5 age band
(0 child < 18, 1 18–34, 2 35–59, 3 60+), bit 6 urban, bit 7 consent.
Business ``bands`` byte: bits 0–1 size band (micro, small, medium, large), bits 2–5 sector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

import socialcredit.jitcache  # noqa: F401  (before any cached jit)
from socialcredit import rng
from socialcredit.errors import UserError
from socialcredit.uscc import business_id_from_code, code_for

if TYPE_CHECKING:
    from socialcredit.scenario import Scenario

# --- names of bands -------------------------------------------------------------------------
INCOME_BANDS = ("low", "lower_middle", "upper_middle", "high")
EDUCATION_BANDS = ("primary_or_less", "lower_secondary", "upper_secondary", "tertiary")
AGE_BANDS = ("child", "18-34", "35-59", "60+")
SIZE_BANDS = ("micro", "small", "medium", "large")
#: 16 sectors, after the sections of GB/T 4754-2017 merged to fit four bits.
SECTORS = (
    "agriculture",
    "mining",
    "manufacturing",
    "utilities",
    "construction",
    "wholesale_retail",
    "transport_logistics",
    "hospitality_catering",
    "information_technology",
    "finance",
    "real_estate",
    "leasing_business_services",
    "science_technology",
    "resident_services",
    "education_health",
    "culture_other",
)

HOUSEHOLD_BLOCK = 8  # ids per block; a household never crosses a block (or region) boundary
MAX_REGIONS = 255  # region ids are stored in a uint8

# --- columns of the population table popt (int64[R, POPT_WIDTH]) ----------------------------
# First and one-past-last subject ids of the region's citizens and businesses (absolute ids).
P_CSTART, P_CEND, P_BSTART, P_BEND = 0, 1, 2, 3
# The region's draw keys as two non-negative 32-bit halves (an int64 table cannot hold a
# uint64 whose top bit is set, and a bit-cast would behave differently under the CUDA simulator).
P_KEYC_HI, P_KEYC_LO, P_KEYB_HI, P_KEYB_LO = 4, 5, 6, 7
P_HH = 8  # 8 cumulative thresholds: a household has size s+1 if u < popt[r, P_HH + s]
P_AGE_FIRST = 16  # 4 cumulative thresholds of the first member's age band (never 0)
P_AGE_OTHER = 20  # 4 cumulative thresholds of the other members' age band
P_INCOME = 24  # 4 cumulative income-band thresholds
P_EDU = 28  # 4 cumulative education-band thresholds
P_URBAN = 32  # threshold of a household being urban
P_CONSENT = 33  # threshold of a citizen's consent
P_INC_SHARED = 34  # threshold of an adult taking the household's income draw
P_EDU_LINK = 35  # threshold of an adult's education reusing its income draw
P_EMPLOYED = 36  # 4 thresholds (by age band) of being employed by a business of the region
P_SIZE = 40  # 4 cumulative business size-band thresholds
P_SECTOR = 44  # 16 cumulative sector thresholds
POPT_WIDTH = 60

# --- draw names (DESIGN 2.9: named by meaning, never by a counter) ---------------------------
_D_HH_SIZE = np.uint64(rng.key("population:household_size"))
_D_URBAN = np.uint64(rng.key("population:urban"))
_D_INCOME_BASE = np.uint64(rng.key("population:household_income"))
_D_AGE = np.uint64(rng.key("population:age"))
_D_INC_SHARED = np.uint64(rng.key("population:income_shared"))
_D_INC_OWN = np.uint64(rng.key("population:income"))
_D_EDU_LINK = np.uint64(rng.key("population:education_link"))
_D_EDU_OWN = np.uint64(rng.key("population:education"))
_D_CONSENT = np.uint64(rng.key("population:consent"))
_D_EMPLOYED = np.uint64(rng.key("population:employed"))
_D_EMPLOYER = np.uint64(rng.key("population:employer"))
_D_REP = np.uint64(rng.key("population:representative"))
_D_SIZE = np.uint64(rng.key("population:size"))
_D_SECTOR = np.uint64(rng.key("population:sector"))
_S32 = np.uint64(32)


# ============================================================================================
# Jitable per-subject functions
# ============================================================================================


@register_jitable
def pack_bands(income, education, age, urban, consent):  # type: ignore[no-untyped-def]
    """A citizen's bands byte from its five attributes."""
    return np.uint8(
        (np.int64(income) & 3)
        | ((np.int64(education) & 3) << 2)
        | ((np.int64(age) & 3) << 4)
        | ((np.int64(urban) & 1) << 6)
        | ((np.int64(consent) & 1) << 7)
    )


@register_jitable
def unpack(band):  # type: ignore[no-untyped-def]
    """(income, education, age, urban, consent) of a citizen's bands byte."""
    b = np.int64(band)
    return b & 3, (b >> 2) & 3, (b >> 4) & 3, (b >> 6) & 1, (b >> 7) & 1


@register_jitable
def pack_business(size, sector):  # type: ignore[no-untyped-def]
    """A business's bands byte from its size band and sector."""
    return np.uint8((np.int64(size) & 3) | ((np.int64(sector) & 15) << 2))


@register_jitable
def unpack_business(band):  # type: ignore[no-untyped-def]
    """(size band, sector) of a business's bands byte."""
    b = np.int64(band)
    return b & 3, (b >> 2) & 15


@register_jitable
def age_band(band):  # type: ignore[no-untyped-def]
    """The age band (0 = child) of a citizen's bands byte."""
    return (np.int64(band) >> 4) & 3


@register_jitable
def _u32(h, draw):  # type: ignore[no-untyped-def]
    """A named 32-bit draw under a subject hash, as int64 (so it compares with table ints)."""
    return np.int64(rng.hi32(rng.sub_hash(h, draw)))


@register_jitable
def _pick(u, popt, r, col, n):  # type: ignore[no-untyped-def]
    """Index of the first of n cumulative thresholds that u falls below (n-1 at most)."""
    k = 0
    while k < n - 1 and u >= popt[r, col + k]:
        k += 1
    return k


@register_jitable
def _key(popt, r, col_hi):  # type: ignore[no-untyped-def]
    return (np.uint64(popt[r, col_hi]) << _S32) | np.uint64(popt[r, col_hi + 1])


@register_jitable
def n_citizens_of(popt):  # type: ignore[no-untyped-def]
    """C: the number of citizens (= the id of the first business)."""
    return popt[popt.shape[0] - 1, P_CEND]


@register_jitable
def n_subjects_of(popt):  # type: ignore[no-untyped-def]
    """C + B: the number of subjects."""
    return popt[popt.shape[0] - 1, P_BEND]


@register_jitable
def citizen_region(i, popt):  # type: ignore[no-untyped-def]
    """Region index of citizen i (binary search over the regions' citizen starts)."""
    lo = 0
    hi = popt.shape[0] - 1
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if popt[mid, P_CSTART] <= i:
            lo = mid
        else:
            hi = mid - 1
    return lo


@register_jitable
def business_region(b, popt):  # type: ignore[no-untyped-def]
    """Region index of business b (a subject id ≥ C)."""
    lo = 0
    hi = popt.shape[0] - 1
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        # a region without businesses has bstart == bend == the next region's bstart; the
        # search settles on the last region starting at or before b, the one that owns it
        if popt[mid, P_BSTART] <= b:
            lo = mid
        else:
            hi = mid - 1
    return lo


@register_jitable
def region_of(s, popt):  # type: ignore[no-untyped-def]
    """Region index of any subject."""
    if s < n_citizens_of(popt):
        return citizen_region(s, popt)
    return business_region(s, popt)


@register_jitable
def _block_cuts(r, block, popt):  # type: ignore[no-untyped-def]
    """Bit k set where a household starts at offset k of the region's block ``block``."""
    h = rng.sub_hash(rng.subject_hash(_key(popt, r, P_KEYC_HI), np.uint64(block)), _D_HH_SIZE)
    mask = np.int64(0)
    pos = 0
    k = 0
    while pos < 8:
        mask |= np.int64(1) << pos
        u = np.int64(rng.hi32(rng.sub_hash(h, np.uint64(k))))
        s = 1
        while s < 8 and u >= popt[r, P_HH + s - 1]:
            s += 1
        pos += s
        k += 1
    return mask


@register_jitable
def _household_in(i, r, popt):  # type: ignore[no-untyped-def]
    """[start, end) of citizen i's household, i in region r."""
    cs = popt[r, P_CSTART]
    local = np.int64(i) - cs
    off = local & 7
    base = cs + (local - off)
    mask = _block_cuts(r, local >> 3, popt)
    a = off
    while ((mask >> a) & 1) == 0:
        a -= 1
    e = off + 1
    while e < 8 and ((mask >> e) & 1) == 0:
        e += 1
    return base + a, base + e


@register_jitable
def household_start_end(i, popt):  # type: ignore[no-untyped-def]
    """Citizen ids [start, end) of citizen i's household."""
    return _household_in(i, citizen_region(i, popt), popt)


@register_jitable
def household_start(i, popt):  # type: ignore[no-untyped-def]
    """First citizen id of citizen i's household (its first member, always an adult)."""
    return household_start_end(i, popt)[0]


@register_jitable
def household_end(i, popt):  # type: ignore[no-untyped-def]
    """One past the last citizen id of citizen i's household."""
    return household_start_end(i, popt)[1]


@register_jitable
def _age_in(i, first, r, popt):  # type: ignore[no-untyped-def]
    """Age band of citizen i of region r; ``first``: i opens its household (then adult)."""
    h = rng.subject_hash(_key(popt, r, P_KEYC_HI), np.uint64(np.int64(i) - popt[r, P_CSTART]))
    col = P_AGE_FIRST if first else P_AGE_OTHER
    return _pick(_u32(h, _D_AGE), popt, r, col, 4)


@register_jitable
def citizen_age(i, popt):  # type: ignore[no-untyped-def]
    """Age band of citizen i (0 = child)."""
    r = citizen_region(i, popt)
    hs, he = _household_in(i, r, popt)
    return _age_in(i, hs == i, r, popt)


@register_jitable
def _adult_income_u(h, hm, r, popt):  # type: ignore[no-untyped-def]
    """An adult's income draw: the household's with the sharing chance, else its own.

    Both are uniform, so the mixture keeps the income shares exact while correlating
    the members of a household."""
    if _u32(h, _D_INC_SHARED) < popt[r, P_INC_SHARED]:
        return _u32(hm, _D_INCOME_BASE)
    return _u32(h, _D_INC_OWN)


@register_jitable
def _adult_education(h, u_inc, r, popt):  # type: ignore[no-untyped-def]
    """An adult's education band: reusing the income draw links the two bands (rank
    correlation) without changing either band's shares."""
    u = u_inc if _u32(h, _D_EDU_LINK) < popt[r, P_EDU_LINK] else _u32(h, _D_EDU_OWN)
    return _pick(u, popt, r, P_EDU, 4)


@register_jitable
def _citizen_bands_in(i, r, popt):  # type: ignore[no-untyped-def]
    cs = popt[r, P_CSTART]
    key = _key(popt, r, P_KEYC_HI)
    hs, he = _household_in(i, r, popt)
    h = rng.subject_hash(key, np.uint64(np.int64(i) - cs))
    # household-level draws are keyed on the first member, so every member sees the same ones
    hm = rng.subject_hash(key, np.uint64(hs - cs))
    first = hs == i
    age = _pick(_u32(h, _D_AGE), popt, r, P_AGE_FIRST if first else P_AGE_OTHER, 4)
    urban = 1 if _u32(hm, _D_URBAN) < popt[r, P_URBAN] else 0
    consent = 1 if _u32(h, _D_CONSENT) < popt[r, P_CONSENT] else 0
    if age == 0:
        # a child has the household's income and its first member's (a parent's) education
        income = _pick(_u32(hm, _D_INCOME_BASE), popt, r, P_INCOME, 4)
        education = _adult_education(hm, _adult_income_u(hm, hm, r, popt), r, popt)
    else:
        u_inc = _adult_income_u(h, hm, r, popt)
        income = _pick(u_inc, popt, r, P_INCOME, 4)
        education = _adult_education(h, u_inc, r, popt)
    return pack_bands(income, education, age, urban, consent)


@register_jitable
def citizen_bands(i, popt):  # type: ignore[no-untyped-def]
    """The bands byte of citizen i, computed from scratch."""
    return _citizen_bands_in(i, citizen_region(i, popt), popt)


@register_jitable
def _business_rep_in(b, r, popt):  # type: ignore[no-untyped-def]
    cs = popt[r, P_CSTART]
    nc = popt[r, P_CEND] - cs
    bs = popt[r, P_BSTART]
    nb = popt[r, P_BEND] - bs
    k = np.int64(b) - bs
    # business k draws a citizen from its own slice [k·C/B, (k+1)·C/B) of the region, so
    # the representatives are non-decreasing in b without any sorting
    lo = k * nc // nb
    gap = (k + 1) * nc // nb - lo
    hb = rng.subject_hash(_key(popt, r, P_KEYB_HI), np.uint64(k))
    p = cs + lo + ((_u32(hb, _D_REP) * gap) >> 32)
    hs, he = _household_in(p, r, popt)
    # move a child to the last adult at or before it in its household: the first member is
    # an adult, so one exists, and the map stays non-decreasing
    j = p
    while j > hs and _age_in(j, False, r, popt) == 0:
        j -= 1
    return j


@register_jitable
def business_rep(b, popt):  # type: ignore[no-untyped-def]
    """Legal representative (an adult citizen of the same region) of business b."""
    return _business_rep_in(b, business_region(b, popt), popt)


@register_jitable
def _business_bands_in(b, r, popt):  # type: ignore[no-untyped-def]
    hb = rng.subject_hash(_key(popt, r, P_KEYB_HI), np.uint64(np.int64(b) - popt[r, P_BSTART]))
    size = _pick(_u32(hb, _D_SIZE), popt, r, P_SIZE, 4)
    sector = _pick(_u32(hb, _D_SECTOR), popt, r, P_SECTOR, 16)
    return pack_business(size, sector)


@register_jitable
def business_bands(b, popt):  # type: ignore[no-untyped-def]
    """The bands byte (size band, sector) of business b."""
    return _business_bands_in(b, business_region(b, popt), popt)


@register_jitable
def employer(i, band, popt):  # type: ignore[no-untyped-def]
    """Employer of citizen i (a business id of its region) or -1; ``band`` is its bands byte.

    Read-only (DESIGN 2.2): it may shape the citizen's own rates, never the reverse."""
    r = citizen_region(i, popt)
    nb = popt[r, P_BEND] - popt[r, P_BSTART]
    if nb == 0:
        return np.int64(-1)
    h = rng.subject_hash(_key(popt, r, P_KEYC_HI), np.uint64(np.int64(i) - popt[r, P_CSTART]))
    if _u32(h, _D_EMPLOYED) >= popt[r, P_EMPLOYED + age_band(band)]:
        return np.int64(-1)
    return popt[r, P_BSTART] + ((_u32(h, _D_EMPLOYER) * nb) >> 32)


@register_jitable
def _lower_bound_rep(rep, x, lo, hi):  # type: ignore[no-untyped-def]
    """First index in [lo, hi) of rep (non-decreasing) whose value is ≥ x."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if np.int64(rep[mid]) < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@register_jitable
def group_of(s, popt, rep):  # type: ignore[no-untyped-def]
    """(citizen_lo, citizen_hi, business_lo, business_hi) of subject s's group.

    A group is a household plus the businesses whose representative belongs to it; the
    ranges are half-open subject ids. ``rep`` is the uint32[B] representative array."""
    C = n_citizens_of(popt)
    c = np.int64(rep[s - C]) if s >= C else np.int64(s)
    r = citizen_region(c, popt)
    hs, he = _household_in(c, r, popt)
    lo = popt[r, P_BSTART] - C
    hi = popt[r, P_BEND] - C
    b_lo = _lower_bound_rep(rep, hs, lo, hi)
    b_hi = _lower_bound_rep(rep, he, b_lo, hi)
    return hs, he, C + b_lo, C + b_hi


@register_jitable
def _lower_bound_pure(x, r, lo, hi, popt):  # type: ignore[no-untyped-def]
    while lo < hi:
        mid = (lo + hi) >> 1
        if _business_rep_in(mid, r, popt) < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@register_jitable
def group_of_pure(s, popt):  # type: ignore[no-untyped-def]
    """Like :func:`group_of` but without the ``rep`` array: representatives are recomputed
    (O(log B) draws), so one group can be regenerated alone from the tables."""
    C = n_citizens_of(popt)
    if s >= C:
        r = business_region(s, popt)
        c = _business_rep_in(s, r, popt)
    else:
        r = citizen_region(s, popt)
        c = np.int64(s)
    hs, he = _household_in(c, r, popt)
    b_lo = _lower_bound_pure(hs, r, popt[r, P_BSTART], popt[r, P_BEND], popt)
    b_hi = _lower_bound_pure(he, r, b_lo, popt[r, P_BEND], popt)
    return hs, he, b_lo, b_hi


# ============================================================================================
# Bulk generation and Python-side wrappers
# ============================================================================================


@njit(parallel=True, cache=True)
def _generate_into(popt, region, bands, rep):  # type: ignore[no-untyped-def]
    # one flat parallel loop per kind (a loop per region would pay a thread launch per region)
    C = n_citizens_of(popt)
    for i in prange(C):
        r = citizen_region(i, popt)
        region[i] = np.uint8(r)
        bands[i] = _citizen_bands_in(i, r, popt)
    for k in prange(n_subjects_of(popt) - C):
        b = C + k
        r = business_region(b, popt)
        region[b] = np.uint8(r)
        bands[b] = _business_bands_in(b, r, popt)
        rep[k] = np.uint32(_business_rep_in(b, r, popt))


@njit(cache=True)
def _bands_range(lo, hi, popt):  # type: ignore[no-untyped-def]
    out = np.empty(hi - lo, np.uint8)
    C = n_citizens_of(popt)
    for s in range(lo, hi):
        out[s - lo] = citizen_bands(s, popt) if s < C else business_bands(s, popt)
    return out


@njit(cache=True)
def _reps_range(lo, hi, popt):  # type: ignore[no-untyped-def]
    out = np.empty(hi - lo, np.uint32)
    for b in range(lo, hi):
        out[b - lo] = np.uint32(business_rep(b, popt))
    return out


@njit(cache=True)
def _household_nb(i, popt):  # type: ignore[no-untyped-def]
    return household_start_end(i, popt)


@njit(cache=True)
def _employer_nb(i, band, popt):  # type: ignore[no-untyped-def]
    return employer(i, band, popt)


@njit(cache=True)
def _group_nb(s, popt, rep):  # type: ignore[no-untyped-def]
    return group_of(s, popt, rep)


@njit(cache=True)
def _group_pure_nb(s, popt):  # type: ignore[no-untyped-def]
    return group_of_pure(s, popt)


@njit(cache=True)
def _household_starts(lo, hi, popt):  # type: ignore[no-untyped-def]
    """1 where citizen i (lo ≤ i < hi) opens a household."""
    out = np.zeros(hi - lo, np.uint8)
    for i in range(lo, hi):
        if household_start_end(i, popt)[0] == i:
            out[i - lo] = 1
    return out


# --- building the population table ---------------------------------------------------------


def _cumulative(shares: list[float] | tuple[float, ...]) -> list[int]:
    """Cumulative integer thresholds of a share vector; the last one is exactly rng.ONE."""
    total = math.fsum(shares)
    out = []
    acc = 0.0
    for s in shares:
        acc += s / total
        out.append(min(rng.threshold(min(acc, 1.0)), rng.ONE))
    out[-1] = rng.ONE
    return out


def _size_probs(lam: float) -> list[float]:
    """Household sizes 1..8: one plus a Poisson(lam) count, cut at 8 (the block length).

    Its shape (a mode at 2–3, a thin tail) resembles the census distribution of Chinese
    household sizes better than a geometric one."""
    w = [lam**k / math.factorial(k) for k in range(8)]
    t = math.fsum(w)
    return [x / t for x in w]


def _households_per_block(p: list[float]) -> float:
    """Expected households in a block of 8 when sizes are drawn from p and the last one is
    cut at the block's end."""
    f = [0.0] * 9  # f[n]: expected households covering n free slots
    for n in range(1, 9):
        f[n] = 1.0 + math.fsum(p[s - 1] * f[n - s] for s in range(1, n))
    return f[8]


def household_size_probs(mean: float) -> list[float]:
    """The size distribution whose households, cut into blocks of 8, average ``mean`` members."""
    if not 1.0 <= mean <= 6.0:
        raise UserError(f"household_mean {mean} is outside [1, 6]")
    if mean == 1.0:
        return [1.0] + [0.0] * 7
    lo, hi = 0.0, 60.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 8.0 / _households_per_block(_size_probs(mid)) < mean:
            lo = mid
        else:
            hi = mid
    return _size_probs((lo + hi) / 2)


def _region_row(
    region: Any, seed: int, cstart: int, cend: int, bstart: int, bend: int
) -> list[int]:
    row = [0] * POPT_WIDTH
    row[P_CSTART], row[P_CEND], row[P_BSTART], row[P_BEND] = cstart, cend, bstart, bend
    with np.errstate(over="ignore"):
        stream = np.uint64(rng.key(f"population:{region.id}"))
        kc = int(rng.day_key(np.uint64(seed), stream, np.uint64(0)))
        kb = int(rng.day_key(np.uint64(seed), stream, np.uint64(1)))
    row[P_KEYC_HI], row[P_KEYC_LO] = kc >> 32, kc & 0xFFFFFFFF
    row[P_KEYB_HI], row[P_KEYB_LO] = kb >> 32, kb & 0xFFFFFFFF
    probs = household_size_probs(region.household_mean)
    row[P_HH : P_HH + 8] = _cumulative(probs)
    # the first member of every household is an adult; the other members carry all the
    # children, at a share raised so that the region's child share comes out as asked
    others = 1.0 - _households_per_block(probs) / 8.0  # share of citizens not first
    child = region.age_shares[0]
    adults = list(region.age_shares[1:])
    if child > 0 and child >= others:
        raise UserError(
            f"region {region.id}: a child share of {child} cannot be reached with households "
            f"of {region.household_mean} members, since every household has an adult"
        )
    child_other = child / others if child > 0 else 0.0
    row[P_AGE_FIRST : P_AGE_FIRST + 4] = _cumulative([0.0, *adults])
    row[P_AGE_OTHER : P_AGE_OTHER + 4] = _cumulative(
        [child_other, *[(1.0 - child_other) * a / math.fsum(adults) for a in adults]]
    )
    row[P_INCOME : P_INCOME + 4] = _cumulative(region.income_shares)
    row[P_EDU : P_EDU + 4] = _cumulative(region.education_shares)
    row[P_URBAN] = rng.threshold(region.urban_share)
    row[P_CONSENT] = rng.threshold(region.consent_share)
    row[P_INC_SHARED] = rng.threshold(region.household_income_sharing)
    row[P_EDU_LINK] = rng.threshold(region.education_income_link)
    row[P_EMPLOYED : P_EMPLOYED + 4] = [rng.threshold(x) for x in region.employment_shares]
    row[P_SIZE : P_SIZE + 4] = _cumulative(region.business_size_shares)
    row[P_SECTOR : P_SECTOR + 16] = _cumulative(region.sector_shares)
    return row


def _admin_code(region: Any) -> int:
    """The region's GB/T 2260 code: the scenario's, else the regions catalogue's, else 0."""
    if region.admin_code is not None:
        return int(region.admin_code)
    from socialcredit.catalogue import load_catalogue

    try:
        code = load_catalogue().region(region.id).code
    except KeyError:
        return 0
    return int(code) if str(code).isdigit() else 0


def business_count(citizens: int, businesses_per_1000: float) -> int:
    """Businesses of a region: round(citizens × per-1000 / 1000), halves rounded up."""
    return int(math.floor(citizens * businesses_per_1000 / 1000.0 + 0.5))


@dataclass(frozen=True)
class Layout:
    """Where every region's subjects lie, and the table the jitable functions read.

    Cheap to build (no per-subject work): enough to regenerate any subject or group alone."""

    popt: np.ndarray  # int64[R, POPT_WIDTH]
    region_ids: list[str]
    region_names: list[str]
    admin_codes: list[int]  # GB/T 2260 six-digit codes, 0 where unknown
    seed: int
    scale: float

    @property
    def n_citizens(self) -> int:
        return int(self.popt[-1, P_CEND])

    @property
    def n_businesses(self) -> int:
        return int(self.popt[-1, P_BEND]) - self.n_citizens

    @property
    def n_subjects(self) -> int:
        return int(self.popt[-1, P_BEND])


def layout(scenario: Scenario, seed: int | None = None, citizens: int | None = None) -> Layout:
    """The population table of a scenario (after ``--seed`` and ``--citizens``)."""
    if citizens is not None:
        scenario = scenario.rescaled(citizens)
    seed = scenario.seed if seed is None else seed
    if not 0 <= seed < 2**64:
        raise UserError(f"seed {seed} is outside [0, 2**64)")
    regions = scenario.regions
    if len(regions) > MAX_REGIONS:
        raise UserError(f"a scenario has at most {MAX_REGIONS} regions, this one {len(regions)}")
    C = sum(r.citizens for r in regions)
    rows = []
    c0 = 0
    b0 = C
    for reg in regions:
        nb = business_count(reg.citizens, reg.businesses_per_1000)
        rows.append(_region_row(reg, seed, c0, c0 + reg.citizens, b0, b0 + nb))
        c0 += reg.citizens
        b0 += nb
    if b0 >= 2**32:
        raise UserError(f"{b0} subjects do not fit the uint32 ids of representatives")
    popt = np.ascontiguousarray(np.array(rows, dtype=np.int64))
    return Layout(
        popt=popt,
        region_ids=[r.id for r in regions],
        region_names=[r.name for r in regions],
        admin_codes=[_admin_code(r) for r in regions],
        seed=seed,
        scale=scenario.scale,
    )


@dataclass
class Population:
    """The synthetic population of a run: three arrays and the tables that explain them."""

    n_citizens: int
    n_businesses: int
    region: np.ndarray  # uint8[C+B] region index of every subject
    bands: np.ndarray  # uint8[C+B] citizen or business bands byte
    rep: np.ndarray  # uint32[B] legal representative (citizen id) of business C+k; sorted
    region_citizen_start: np.ndarray  # int64[R+1] first citizen id of each region; [R] = C
    region_business_start: np.ndarray  # int64[R+1] first business id (≥ C); [R] = C+B
    popt: np.ndarray  # int64[R, POPT_WIDTH] the table the jitable functions read
    region_ids: list[str]
    region_names: list[str]
    admin_codes: list[int]
    seed: int
    scale: float

    @property
    def n_subjects(self) -> int:
        return self.n_citizens + self.n_businesses

    @property
    def layout(self) -> Layout:
        return Layout(
            self.popt, self.region_ids, self.region_names, self.admin_codes, self.seed, self.scale
        )

    def group_of(self, subject: int) -> tuple[int, int, int, int]:
        """(citizen_lo, citizen_hi, business_lo, business_hi) of the subject's group."""
        self._check(subject)
        g = _group_nb(np.int64(subject), self.popt, self.rep)
        return int(g[0]), int(g[1]), int(g[2]), int(g[3])

    def household(self, citizen: int) -> tuple[int, int]:
        """[start, end) of a citizen's household."""
        self._check(citizen)
        if citizen >= self.n_citizens:
            raise UserError(f"subject {citizen} is a business, not a citizen")
        a, b = _household_nb(np.int64(citizen), self.popt)
        return int(a), int(b)

    def employer(self, citizen: int) -> int:
        """Employer business id of a citizen, or -1."""
        self._check(citizen)
        if citizen >= self.n_citizens:
            raise UserError(f"subject {citizen} is a business, not a citizen")
        return int(_employer_nb(np.int64(citizen), self.bands[citizen], self.popt))

    def shard_bounds(self, n_shards: int) -> tuple[np.ndarray, np.ndarray]:
        """Cut the population into ``n_shards`` shards of whole groups.

        Returns ``(citizen_bounds, business_bounds)``, both int64[n_shards+1]: shard k holds
        citizens ``[citizen_bounds[k], citizen_bounds[k+1])`` and businesses
        ``[business_bounds[k], business_bounds[k+1])``. Citizen cuts fall on multiples of 8,
        which are household boundaries, and each business goes with its representative."""
        if n_shards < 1:
            raise UserError(f"the number of shards must be at least 1, not {n_shards}")
        C = self.n_citizens
        blocks = C // HOUSEHOLD_BLOCK
        k = np.arange(n_shards + 1, dtype=np.int64)
        cb = (k * blocks // n_shards) * HOUSEHOLD_BLOCK
        # search with uint32 keys so numpy does not copy rep to a wider type
        bb = np.searchsorted(self.rep, cb.astype(np.uint32), side="left").astype(np.int64) + C
        bb[-1] = C + self.n_businesses
        return cb, bb

    def _check(self, subject: int) -> None:
        if not 0 <= subject < self.n_subjects:
            raise UserError(
                f"subject {subject} does not exist; ids run from 0 to {self.n_subjects - 1}"
            )


def generate(
    scenario: Scenario, seed: int | None = None, citizens: int | None = None
) -> Population:
    """Generate the scenario's population (``seed`` and ``citizens`` override the scenario's)."""
    lay = layout(scenario, seed, citizens)
    return populate(lay)


def populate(lay: Layout) -> Population:
    """Fill the population arrays of a layout (a parallel loop over ids)."""
    popt = lay.popt
    C, B = lay.n_citizens, lay.n_businesses
    region = np.empty(C + B, np.uint8)
    bands = np.empty(C + B, np.uint8)
    rep = np.empty(B, np.uint32)
    _generate_into(popt, region, bands, rep)
    cstart = np.append(popt[:, P_CSTART], C).astype(np.int64)
    bstart = np.append(popt[:, P_BSTART], C + B).astype(np.int64)
    return Population(
        n_citizens=C,
        n_businesses=B,
        region=region,
        bands=bands,
        rep=rep,
        region_citizen_start=cstart,
        region_business_start=bstart,
        popt=popt,
        region_ids=lay.region_ids,
        region_names=lay.region_names,
        admin_codes=lay.admin_codes,
        seed=lay.seed,
        scale=lay.scale,
    )


def bands_of_range(lay: Layout, lo: int, hi: int) -> np.ndarray:
    """Bands bytes of subjects [lo, hi), computed alone (no population arrays needed)."""
    return _bands_range(np.int64(lo), np.int64(hi), lay.popt)


def reps_of_range(lay: Layout, lo: int, hi: int) -> np.ndarray:
    """Representatives of businesses [lo, hi) (subject ids ≥ C), computed alone."""
    return _reps_range(np.int64(lo), np.int64(hi), lay.popt)


def group_alone(lay: Layout, subject: int) -> tuple[int, int, int, int]:
    """The group of a subject from the layout alone (no arrays): for replaying one group."""
    n = lay.n_subjects
    if not 0 <= subject < n:
        raise UserError(f"subject {subject} does not exist; ids run from 0 to {n - 1}")
    g = _group_pure_nb(np.int64(subject), lay.popt)
    return int(g[0]), int(g[1]), int(g[2]), int(g[3])


def household_starts(lay: Layout, lo: int, hi: int) -> np.ndarray:
    """uint8[hi-lo]: 1 where citizen lo+k opens a household (for tests and statistics)."""
    return _household_starts(np.int64(lo), np.int64(hi), lay.popt)


# --- names and description -----------------------------------------------------------------


def band_names(band: int) -> dict[str, Any]:
    """A citizen's bands byte in words."""
    b = int(band)
    return {
        "income_band": INCOME_BANDS[b & 3],
        "education_band": EDUCATION_BANDS[(b >> 2) & 3],
        "age_band": AGE_BANDS[(b >> 4) & 3],
        "urban": bool((b >> 6) & 1),
        "consent": bool((b >> 7) & 1),
    }


def business_band_names(band: int) -> dict[str, str]:
    """A business's bands byte in words."""
    b = int(band)
    return {"size_band": SIZE_BANDS[b & 3], "sector": SECTORS[(b >> 2) & 15]}


def uscc_of(pop: Population | Layout, business: int) -> str:
    """The Unified Social Credit Code of a business subject."""
    C = pop.n_citizens
    if not C <= business < C + pop.n_businesses:
        raise UserError(f"subject {business} is not a business")
    # the last region starting at or before the id owns it (regions without businesses
    # share their start with the next region)
    r = int(np.searchsorted(pop.popt[:, P_BSTART], business, side="right")) - 1
    return code_for(business, pop.admin_codes[r])


def subject_id(pop: Population, text: str | int) -> int:
    """A subject id from a command-line SUBJECT: an id or a business's USCC.

    An id is ASCII digits only (DESIGN 8): `` 5``, ``+5`` or other scripts' digits are
    refused, as Python's ``int`` would otherwise read them."""
    s = str(text)
    if s.isascii() and s.isdigit():
        sid = int(s)
    elif s != s.strip() or any(c.isdigit() and not c.isascii() for c in s):
        raise UserError(f"the subject {s!r} is neither a subject id (digits 0-9 only) nor a "
                        "business's Unified Social Credit Code")
    else:
        sid = business_id_from_code(s)
        if not pop.n_citizens <= sid < pop.n_subjects:
            raise UserError(f"no business of this population has the code {s}")
    pop._check(sid)
    return sid


def describe(pop: Population, subject_id: int) -> dict[str, Any]:
    """A subject's attributes, household, businesses or representative, employer and code."""
    pop._check(subject_id)
    c_lo, c_hi, b_lo, b_hi = pop.group_of(subject_id)
    r = int(pop.region[subject_id])
    out: dict[str, Any] = {
        "subject_id": subject_id,
        "region": pop.region_ids[r],
        "region_name": pop.region_names[r],
        "group": {
            "citizens": list(range(c_lo, c_hi)),
            "businesses": list(range(b_lo, b_hi)),
        },
    }
    if subject_id < pop.n_citizens:
        out["kind"] = "citizen"
        out.update(band_names(pop.bands[subject_id]))
        out["household"] = [
            {"subject_id": j, "age_band": AGE_BANDS[(int(pop.bands[j]) >> 4) & 3]}
            for j in range(c_lo, c_hi)
        ]
        out["household_first_member"] = c_lo
        out["represents"] = [
            {"subject_id": b, "uscc": uscc_of(pop, b)}
            for b in range(b_lo, b_hi)
            if int(pop.rep[b - pop.n_citizens]) == subject_id
        ]
        emp = pop.employer(subject_id)
        out["employer"] = None if emp < 0 else {"subject_id": emp, "uscc": uscc_of(pop, emp)}
    else:
        out["kind"] = "business"
        out.update(business_band_names(pop.bands[subject_id]))
        out["uscc"] = uscc_of(pop, subject_id)
        out["representative"] = int(pop.rep[subject_id - pop.n_citizens])
    return out


class LazyPopulation(Population):
    """A population whose ``region``, ``bands`` and ``rep`` arrays are generated (on the CPU,
    by ``population.populate``) only when first read; ``materialized`` says whether they
    exist yet. A GPU run needs only the layout on the host: the device generates the subjects
    itself and the recorder reads regions and bands from the synced state."""

    def _get(self, k: int) -> np.ndarray:
        arrays = self.__dict__.get("_arrays")
        if arrays is None:
            full = populate(self.layout)
            arrays = self.__dict__["_arrays"] = (full.region, full.bands, full.rep)
        return arrays[k]

    @property
    def materialized(self) -> bool:
        return self.__dict__.get("_arrays") is not None


def _lazy(k: int) -> property:
    return property(lambda self: self._get(k), lambda self, value: None)


LazyPopulation.region = _lazy(0)  # type: ignore[assignment]
LazyPopulation.bands = _lazy(1)  # type: ignore[assignment]
LazyPopulation.rep = _lazy(2)  # type: ignore[assignment]


def lazy_population(lay: Any) -> LazyPopulation:
    """The :class:`LazyPopulation` of a ``population.Layout``: no per-subject work."""
    popt = lay.popt
    C, B = lay.n_citizens, lay.n_businesses
    empty = np.zeros(0, np.uint8)
    return LazyPopulation(
        n_citizens=C, n_businesses=B, region=empty, bands=empty, rep=empty,
        region_citizen_start=np.append(popt[:, P_CSTART], C).astype(np.int64),
        region_business_start=np.append(popt[:, P_BSTART], C + B).astype(np.int64),
        popt=popt, region_ids=lay.region_ids, region_names=lay.region_names,
        admin_codes=lay.admin_codes, seed=lay.seed, scale=lay.scale)
