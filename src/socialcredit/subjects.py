"""The ``subjects`` table of a run: one row per subject with its demographics (docs/run-directory.md).

Users join ``decisions``, ``list_events``, ``records`` or ``ledger`` to it on ``subject_id`` to
count by income, age, education, region, sector or size in their own SQL. The rows are
computed from the population's layout alone, a range of ids at a time, so a run whose
population lives on a GPU (or is not held in memory at all) writes the same table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from numba import njit, prange

import socialcredit.jitcache  # noqa: F401  (before any cached jit)
from socialcredit import arrow, uscc
from socialcredit import population as P

#: Rows per table batch (a batch is one row group's worth or less).
CHUNK = 1 << 16

_D = pa.dictionary(pa.int16(), pa.string())
SCHEMA = pa.schema([
    ("subject_id", pa.int64()),
    ("kind", _D),
    ("region", _D),
    ("household", pa.int64()),
    ("income", pa.int8()), ("education", pa.int8()), ("age", pa.int8()),
    ("urban", pa.bool_()), ("consent", pa.bool_()),
    ("income_band", _D), ("education_band", _D), ("age_band", _D),
    ("employer", pa.int64()),
    ("size", pa.int8()), ("size_band", _D), ("sector", _D),
    ("representative", pa.int64()),
    ("uscc", pa.string()),
])


@njit(parallel=True, cache=True)
def _citizen_rows(lo, hi, popt):  # type: ignore[no-untyped-def]
    """Bands byte, household (its first member) and employer (or -1) of citizens [lo, hi)."""
    n = hi - lo
    bands = np.empty(n, np.uint8)
    household = np.empty(n, np.int64)
    employer = np.empty(n, np.int64)
    for k in prange(n):
        i = lo + k
        b = P.citizen_bands(i, popt)
        bands[k] = b
        household[k] = P.household_start(i, popt)
        employer[k] = P.employer(i, b, popt)
    return bands, household, employer


_ALPHABET = np.frombuffer(uscc.ALPHABET.encode(), np.uint8)
_ORG_VALUE = np.array([uscc._ORG_VALUE[c] for c in uscc.ALPHABET], np.int64)
_INDEX = np.zeros(128, np.int64)
_INDEX[_ALPHABET] = np.arange(len(_ALPHABET))


def uscc_codes(ids: np.ndarray, admin: np.ndarray) -> pa.Array:
    """``uscc.code_for`` of many businesses at once (ids and their regions' admin codes)."""
    n = len(ids)
    chars = np.empty((n, 18), np.uint8)
    chars[:, 0], chars[:, 1] = ord("9"), ord("1")
    a = admin.astype(np.int64)
    for j in range(6):
        chars[:, 7 - j] = ord("0") + a % 10
        a //= 10
    rest = ids.astype(np.int64)
    org = np.zeros(n, np.int64)
    for j in range(uscc._BODY):  # base-31 digits, the last first
        d = rest % 31
        rest //= 31
        chars[:, 8 + uscc._BODY - 1 - j] = _ALPHABET[d]
        org += _ORG_VALUE[d] * uscc._ORG_WEIGHTS[uscc._BODY - 1 - j]
    c = 11 - org % 11
    chars[:, 16] = np.where(c == 10, ord("X"), np.where(c == 11, ord("0"), ord("0") + c % 10))
    total = (_INDEX[chars[:, :17]] * np.array(uscc.WEIGHTS, np.int64)).sum(axis=1)
    chars[:, 17] = _ALPHABET[(31 - total % 31) % 31]
    return arrow.array(chars.view("S18").ravel().astype(str), pa.string())


def _region_of(ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
    # the last region starting at or before the id (a region without businesses shares its
    # start with the next one)
    return (np.searchsorted(starts, ids, side="right") - 1).astype(np.int64)


def subject_tables(layout: Any) -> Iterator[pa.Table]:
    """The ``subjects`` table of a population (a ``population.Layout``), in id order."""
    popt = layout.popt
    C, B = int(layout.n_citizens), int(layout.n_businesses)
    regions = list(layout.region_ids)
    c_starts = popt[:, P.P_CSTART].astype(np.int64)
    b_starts = popt[:, P.P_BSTART].astype(np.int64)
    for lo in range(0, C, CHUNK):
        hi = min(C, lo + CHUNK)
        ids = np.arange(lo, hi, dtype=np.int64)
        bands, household, employer = _citizen_rows(np.int64(lo), np.int64(hi), popt)
        b = bands.astype(np.int64)
        income, education, age = b & 3, (b >> 2) & 3, (b >> 4) & 3
        n = hi - lo
        none = np.ones(n, bool)
        yield arrow.table({
            "subject_id": ids,
            "kind": arrow.dictionary(np.zeros(n, np.int64), ("citizen", "business")),
            "region": arrow.dictionary(_region_of(ids, c_starts), regions),
            "household": household,
            "income": income.astype(np.int8), "education": education.astype(np.int8),
            "age": age.astype(np.int8),
            "urban": ((b >> 6) & 1).astype(bool), "consent": ((b >> 7) & 1).astype(bool),
            "income_band": arrow.dictionary(income, P.INCOME_BANDS),
            "education_band": arrow.dictionary(education, P.EDUCATION_BANDS),
            "age_band": arrow.dictionary(age, P.AGE_BANDS),
            "employer": arrow.array(employer, mask=employer < 0),
            "size": arrow.array(np.zeros(n, np.int8), mask=none),
            "size_band": arrow.dictionary(np.zeros(n, np.int64), P.SIZE_BANDS, none),
            "sector": arrow.dictionary(np.zeros(n, np.int64), P.SECTORS, none),
            "representative": arrow.array(np.zeros(n, np.int64), mask=none),
            "uscc": pa.nulls(n, pa.string()),
        }, schema=SCHEMA)
    for lo in range(C, C + B, CHUNK):
        hi = min(C + B, lo + CHUNK)
        ids = np.arange(lo, hi, dtype=np.int64)
        n = hi - lo
        b = P.bands_of_range(layout, lo, hi).astype(np.int64)
        reps = P.reps_of_range(layout, lo, hi).astype(np.int64)
        region = _region_of(ids, b_starts)
        size, sector = b & 3, (b >> 2) & 15
        codes = uscc_codes(ids, np.asarray(layout.admin_codes, np.int64)[region])
        none = np.ones(n, bool)
        yield arrow.table({
            "subject_id": ids,
            "kind": arrow.dictionary(np.ones(n, np.int64), ("citizen", "business")),
            "region": arrow.dictionary(region, regions),
            "household": arrow.array(np.zeros(n, np.int64), mask=none),
            "income": arrow.array(np.zeros(n, np.int8), mask=none),
            "education": arrow.array(np.zeros(n, np.int8), mask=none),
            "age": arrow.array(np.zeros(n, np.int8), mask=none),
            "urban": arrow.array(np.zeros(n, bool), mask=none),
            "consent": arrow.array(np.zeros(n, bool), mask=none),
            "income_band": arrow.dictionary(np.zeros(n, np.int64), P.INCOME_BANDS, none),
            "education_band": arrow.dictionary(np.zeros(n, np.int64), P.EDUCATION_BANDS, none),
            "age_band": arrow.dictionary(np.zeros(n, np.int64), P.AGE_BANDS, none),
            "employer": arrow.array(np.zeros(n, np.int64), mask=none),
            "size": size.astype(np.int8),
            "size_band": arrow.dictionary(size, P.SIZE_BANDS),
            "sector": arrow.dictionary(sector, P.SECTORS),
            "representative": reps,
            "uscc": codes,
        }, schema=SCHEMA)
