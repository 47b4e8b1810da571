import numpy as np
import pytest
from numba import njit

from socialcredit import population as P
from socialcredit import uscc
from socialcredit.errors import UserError
from socialcredit.scenario import Scenario

N = 200_000


@pytest.fixture(scope="module")
def scenario():
    return Scenario.load("default").rescaled(N)


@pytest.fixture(scope="module")
def pop(scenario):
    return P.generate(scenario)


def citizens(pop):
    return pop.bands[: pop.n_citizens].astype(np.int64)


def household_ranges(pop):
    """(starts, ends) of every household, from the pure household functions."""
    flags = P.household_starts(pop.layout, 0, pop.n_citizens)
    starts = np.flatnonzero(flags)
    ends = np.append(starts[1:], pop.n_citizens)
    return starts, ends


def test_arrays_dtypes_and_sizes(pop, scenario):
    C, B = pop.n_citizens, pop.n_businesses
    assert C == N == scenario.citizens
    assert B == sum(P.business_count(r.citizens, r.businesses_per_1000) for r in scenario.regions)
    assert pop.region.dtype == np.uint8 and pop.region.shape == (C + B,)
    assert pop.bands.dtype == np.uint8 and pop.bands.shape == (C + B,)
    assert pop.rep.dtype == np.uint32 and pop.rep.shape == (B,)
    assert pop.region_citizen_start.dtype == np.int64
    assert pop.region_business_start.dtype == np.int64
    assert pop.region_citizen_start[0] == 0 and pop.region_citizen_start[-1] == C
    assert pop.region_business_start[0] == C and pop.region_business_start[-1] == C + B
    assert pop.popt.dtype == np.int64 and pop.popt.shape == (3, P.POPT_WIDTH)
    # about 2 bytes per subject plus 4 per business, nothing else per subject
    per_subject = pop.region.nbytes + pop.bands.nbytes + pop.rep.nbytes
    assert per_subject == 2 * (C + B) + 4 * B
    for r in range(3):
        lo, hi = pop.region_citizen_start[r], pop.region_citizen_start[r + 1]
        assert (pop.region[lo:hi] == r).all()
        assert (hi - lo) % 8 == 0
        lo, hi = pop.region_business_start[r], pop.region_business_start[r + 1]
        assert (pop.region[lo:hi] == r).all()


def test_same_seed_same_population_other_seed_other(scenario, pop):
    again = P.generate(scenario)
    for name in ("region", "bands", "rep"):
        assert np.array_equal(getattr(pop, name), getattr(again, name))
    other = P.generate(scenario, seed=scenario.seed + 1)
    assert (other.bands != pop.bands).mean() > 0.3
    assert (other.rep != pop.rep).mean() > 0.3


def test_sub_ranges_and_groups_alone_match_the_whole(pop):
    lay = pop.layout
    C = pop.n_citizens
    for lo, hi in [(0, 1000), (79_995, 80_021), (C - 500, C + 300), (C + 100, C + 700)]:
        assert np.array_equal(P.bands_of_range(lay, lo, hi), pop.bands[lo:hi])
    for lo, hi in [(C, C + 500), (pop.n_subjects - 400, pop.n_subjects)]:
        assert np.array_equal(P.reps_of_range(lay, lo, hi), pop.rep[lo - C : hi - C])
    rng = np.random.default_rng(0)  # picks test subjects only, not part of the model
    picks = np.concatenate([rng.integers(0, C, 200), rng.integers(C, pop.n_subjects, 100)])
    for s in picks.tolist():
        g = pop.group_of(s)
        assert P.group_alone(lay, s) == g
        c_lo, c_hi, b_lo, b_hi = g
        assert c_lo <= (s if s < C else pop.rep[s - C]) < c_hi
        assert np.array_equal(P.bands_of_range(lay, c_lo, c_hi), pop.bands[c_lo:c_hi])
        if s >= C:
            assert b_lo <= s < b_hi


def test_a_region_does_not_move_when_another_is_resized(scenario, pop):
    regions = list(scenario.regions)
    regions[0] = regions[0].model_copy(update={"citizens": regions[0].citizens + 800})
    other = P.generate(scenario.model_copy(update={"regions": regions}))
    # hangzhou starts 800 ids later but its citizens (by local index) are the same
    a0, a1 = pop.region_citizen_start[1], pop.region_citizen_start[2]
    b0 = other.region_citizen_start[1]
    assert np.array_equal(other.bands[b0 : b0 + (a1 - a0)], pop.bands[a0:a1])


def test_default_and_unified_share_their_population(pop):
    unified = P.generate(Scenario.load("unified"), citizens=N)
    for name in ("region", "bands", "rep"):
        assert np.array_equal(getattr(unified, name), getattr(pop, name))


def test_shares_follow_the_scenario(pop, scenario):
    bands = citizens(pop)
    region = pop.region[: pop.n_citizens]
    starts, ends = household_ranges(pop)
    for r, reg in enumerate(scenario.regions):
        b = bands[region == r]
        for shift, mask, shares in (
            (0, 3, reg.income_shares),
            (2, 3, reg.education_shares),
            (4, 3, reg.age_shares),
        ):
            got = np.bincount((b >> shift) & mask, minlength=4) / b.size
            assert np.allclose(got, shares, atol=0.015), (reg.id, shift, got, shares)
        assert ((b >> 6) & 1).mean() == pytest.approx(reg.urban_share, abs=0.015)
        assert ((b >> 7) & 1).mean() == pytest.approx(reg.consent_share, abs=0.01)
        in_r = region[starts] == r
        assert (ends[in_r] - starts[in_r]).mean() == pytest.approx(reg.household_mean, abs=0.05)
    # businesses: the shipped regions share the default size and sector shares, so pool them
    reg = scenario.regions[0]
    assert all(r.sector_shares == reg.sector_shares for r in scenario.regions)
    assert all(r.business_size_shares == reg.business_size_shares for r in scenario.regions)
    b = pop.bands[pop.n_citizens :]
    size = np.bincount(b & 3, minlength=4) / b.size
    assert np.allclose(size, reg.business_size_shares, atol=0.01)
    sector = np.bincount(b >> 2, minlength=16) / b.size
    assert np.allclose(sector, reg.sector_shares, atol=0.015)


def test_households_are_id_ranges_inside_blocks(pop):
    starts, ends = household_ranges(pop)
    sizes = ends - starts
    assert sizes.min() >= 1 and sizes.max() <= 8
    assert np.isin(np.arange(0, pop.n_citizens, 8), starts).all()  # every block opens one
    assert (starts // 8 == (ends - 1) // 8).all()  # and no household crosses a block
    bands = citizens(pop)
    age = (bands >> 4) & 3
    assert (age[starts] != 0).all()  # the first member is an adult ...
    head = np.repeat(starts, sizes)
    assert np.array_equal((bands >> 6) & 1, (bands[head] >> 6) & 1)  # ... urban or rural alike
    # children only where there is an adult; a child's education is its first member's
    child = age == 0
    assert (age[head[child]] != 0).all()
    assert np.array_equal((bands[child] >> 2) & 3, (bands[head[child]] >> 2) & 3)
    # spot-check the jitable bounds against the ranges
    for i in (0, 7, 8, 12345, pop.n_citizens - 1):
        k = np.searchsorted(starts, i, side="right") - 1
        assert pop.household(i) == (starts[k], ends[k])


def test_income_is_shared_within_households(pop):
    starts, ends = household_ranges(pop)
    bands = citizens(pop)
    pairs = starts[ends - starts >= 2]
    a, b = bands[pairs] & 3, bands[pairs + 1] & 3
    same = (a == b).mean()
    assert same > 0.5  # independent draws of quartiles would agree about a quarter of the time


def test_representatives(pop):
    C = pop.n_citizens
    rep = pop.rep.astype(np.int64)
    assert (np.diff(rep) >= 0).all()
    assert (rep < C).all()
    assert (((pop.bands[rep] >> 4) & 3) != 0).all()  # adults
    assert np.array_equal(pop.region[rep], pop.region[C:])  # of the business's region
    b = C + 123
    g = pop.group_of(b)
    assert g[0] <= rep[123] < g[1]
    members = range(g[2], g[3])
    assert all(g[0] <= rep[x - C] < g[1] for x in members)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 40_000])
def test_shard_bounds_are_whole_groups(pop, n):
    cb, bb = pop.shard_bounds(n)
    C = pop.n_citizens
    assert cb[0] == 0 and cb[-1] == C and bb[0] == C and bb[-1] == pop.n_subjects
    assert (np.diff(cb) >= 0).all() and (np.diff(bb) >= 0).all()
    assert (cb % 8 == 0).all()  # household boundaries
    shard_of_citizen = np.searchsorted(cb, np.arange(C), side="right") - 1
    shard_of_business = np.searchsorted(bb, np.arange(C, pop.n_subjects), side="right") - 1
    assert np.array_equal(shard_of_business, shard_of_citizen[pop.rep])
    # every subject once: the sizes add up, and no group straddles a cut
    assert (np.diff(cb).sum(), np.diff(bb).sum()) == (C, pop.n_businesses)
    for k in range(1, min(n, 8)):
        if 0 < cb[k] < C:
            assert pop.group_of(int(cb[k]))[0] == cb[k]


def test_shard_bounds_reject_zero(pop):
    with pytest.raises(UserError):
        pop.shard_bounds(0)


def test_employer(pop, scenario):
    C = pop.n_citizens
    emp = np.array([pop.employer(i) for i in range(0, C, 7)])
    ids = np.arange(0, C, 7)
    age = (pop.bands[ids] >> 4) & 3
    has = emp >= 0
    assert (emp[age == 0] == -1).all()
    assert (pop.region[emp[has]] == pop.region[ids[has]]).all()
    assert (emp[has] >= C).all()
    control = scenario.regions[2]
    in_control = pop.region[ids] == 2
    for a in (1, 2, 3):
        sel = in_control & (age == a)
        assert has[sel].mean() == pytest.approx(control.employment_shares[a], abs=0.03)


def test_pack_and_unpack_round_trip():
    @njit(cache=False)
    def round_trip():
        out = np.zeros(256, np.int64)
        for b in range(256):
            inc, edu, age, urb, con = P.unpack(np.uint8(b))
            out[b] = P.pack_bands(inc, edu, age, urb, con)
        return out

    assert np.array_equal(round_trip(), np.arange(256))
    assert P.band_names(0b10_11_01_10 | 0x40) == {
        "income_band": "upper_middle",
        "education_band": "lower_secondary",
        "age_band": "60+",
        "urban": True,
        "consent": True,
    }
    assert P.business_band_names(3 | (2 << 2)) == {"size_band": "large", "sector": "manufacturing"}


@njit(cache=True)
def _from_user_kernel(ids, popt, rep):
    out = np.zeros((ids.shape[0], 8), np.int64)
    C = P.n_citizens_of(popt)
    for k in range(ids.shape[0]):
        s = ids[k]
        g = P.group_of(s, popt, rep)
        out[k, 0] = g[0]
        out[k, 1] = g[3]
        out[k, 2] = P.region_of(s, popt)
        if s < C:
            out[k, 3] = P.household_start(s, popt)
            out[k, 4] = P.household_end(s, popt)
            band = P.citizen_bands(s, popt)
            out[k, 5] = band
            out[k, 6] = P.employer(s, band, popt)
            out[k, 7] = P.citizen_age(s, popt)
        else:
            out[k, 5] = P.business_bands(s, popt)
            out[k, 6] = P.business_rep(s, popt)
    return out


def test_jitable_functions_work_inside_user_kernels_and_as_plain_python(pop):
    C = pop.n_citizens
    ids = np.array([0, 5, 8, 90_001, C - 1, C, C + 77, pop.n_subjects - 1], np.int64)
    got = _from_user_kernel(ids, pop.popt, pop.rep)
    for k, s in enumerate(ids.tolist()):
        g = pop.group_of(s)
        assert (got[k, 0], got[k, 1]) == (g[0], g[3])
        assert got[k, 2] == pop.region[s]
        assert got[k, 5] == pop.bands[s]
        if s < C:
            assert (got[k, 3], got[k, 4]) == pop.household(s)
            assert got[k, 6] == pop.employer(s)
            assert got[k, 7] == (pop.bands[s] >> 4) & 3
        else:
            assert got[k, 6] == pop.rep[s - C]
    # the CUDA simulator runs the same functions as plain Python on numpy scalars
    with np.errstate(over="ignore"):
        for s in ids.tolist():
            if s < C:
                assert int(P.citizen_bands(np.int64(s), pop.popt)) == pop.bands[s]
                assert tuple(int(x) for x in P.household_start_end(np.int64(s), pop.popt)) == (
                    pop.household(s)
                )
            else:
                assert int(P.business_bands(np.int64(s), pop.popt)) == pop.bands[s]
                assert int(P.business_rep(np.int64(s), pop.popt)) == pop.rep[s - C]


def test_describe_and_codes(pop):
    C = pop.n_citizens
    d = P.describe(pop, 12_345)
    assert d["kind"] == "citizen" and d["subject_id"] == 12_345
    assert {"income_band", "education_band", "age_band", "urban", "consent"} <= d.keys()
    assert any(m["subject_id"] == 12_345 for m in d["household"])
    b = C + 10
    d = P.describe(pop, b)
    assert d["kind"] == "business" and d["representative"] == pop.rep[10]
    assert uscc.valid(d["uscc"]) and d["uscc"][2:8] == "371082"
    assert uscc.business_id_from_code(d["uscc"]) == b
    assert P.subject_id(pop, d["uscc"]) == b
    assert P.subject_id(pop, "42") == 42
    rep = P.describe(pop, int(pop.rep[10]))
    assert any(x["subject_id"] == b for x in rep["represents"])
    with pytest.raises(UserError, match="does not exist"):
        P.describe(pop, pop.n_subjects)
    with pytest.raises(UserError):
        P.subject_id(pop, uscc.code_for(pop.n_subjects + 5, 0))


def test_household_sizes_are_calibrated():
    for mean in (1.0, 1.5, 2.62, 3.2, 5.0):
        probs = P.household_size_probs(mean)
        assert sum(probs) == pytest.approx(1.0)
        assert 8 / P._households_per_block(probs) == pytest.approx(mean, abs=1e-6)
    with pytest.raises(UserError):
        P.household_size_probs(7.0)


def test_china_population_small(tmp_path):
    s = Scenario.load("china").rescaled(31 * 64)
    pop = P.generate(s)
    assert pop.n_citizens == 31 * 64
    assert len(pop.region_ids) == 31
    assert pop.admin_codes[0] == 110000
    assert (np.diff(pop.rep.astype(np.int64)) >= 0).all()


def test_represented_range_finds_every_business_of_a_citizen(pop):
    """The kernel's search (a guess from the population's layout, then galloping) gives the
    exact range for every citizen: over the whole population, over shards, and even when it
    is handed the wrong region (a bad guess only costs time)."""
    from socialcredit.kernel.group import represented_range

    find = njit(represented_range)
    C = pop.n_citizens
    rep = pop.rep
    popt = pop.popt
    R = popt.shape[0]
    counts = np.bincount(rep.astype(np.int64), minlength=C)
    starts = np.searchsorted(rep, np.arange(C), side="left")
    rng = np.random.default_rng(7)
    sample = np.concatenate([np.flatnonzero(counts > 1)[:300], rng.integers(0, C, 3000)])
    for i in sample:
        r = int(pop.region[i])
        for rr in (r, (r + 1) % R):
            lo, hi = find(int(i), rr, rep, popt, C)
            assert (lo, hi) == (starts[i], starts[i] + counts[i]), (i, rr)
    cb, bb = pop.shard_bounds(5)
    for k in range(5):
        b_lo, b_hi = bb[k] - C, bb[k + 1] - C
        part = np.ascontiguousarray(rep[b_lo:b_hi])
        for i in rng.integers(cb[k], cb[k + 1], 500):
            lo, hi = find(int(i), int(pop.region[i]), part, popt, C + b_lo)
            assert (lo + b_lo, hi + b_lo) == (starts[i], starts[i] + counts[i])
