"""Behaviour tables: how often acts happen, what channels see, how often services are asked.

Behaviour comes from the catalogue (defaults with references) and the scenario (overrides and
assumptions); the policy only enters through the feedback switches of DESIGN 2.8 (an act that
the policy penalises becomes rarer where surveillance is dense, and so on). Everything is
turned into integers here, once: rates become 32-bit thresholds, modifiers Q8 fixed point
(256 = 1.0). The kernels never see a float.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from socialcredit.errors import UserError
from socialcredit.kernel.layout import (
    ACT_SLOTS,
    ACT_W,
    MAX_ACT_CHANNELS,
    SVC_COLS,
    SVC_SLOTS,
    SVC_W,
)
from socialcredit.policy.tables import PolicyTables
from socialcredit.rng import ONE, threshold

_EPOCH = dt.date(1970, 1, 1)  # day 0 of the policy's epoch_start (socialcredit.engine.EPOCH)
#: Largest product of multiplicative modifiers on a rate (DESIGN 2.3: "the product capped").
MOD_CAP = 8.0
#: Economic feedback: chance that a denied job or loan lowers the income band [assumption].
ECON_DROP = 0.05
#: Services whose denial has economic consequences (DESIGN 2.8).
ECONOMIC_SERVICES = ("job", "senior_post", "loan", "business_loan")


def q8(x: float) -> int:
    """A multiplier as Q8 fixed point."""
    if x < 0:
        raise ValueError(f"a modifier cannot be negative ({x})")
    return int(round(x * 256))


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _mods(obj: Any, name: str, n: int) -> list[float]:
    vals = _get(_get(obj, "modifiers"), name)
    if vals is None:
        return [1.0] * n
    vals = list(vals)
    if len(vals) != n:
        raise ValueError(f"{name} modifiers need {n} values")
    return [float(v) for v in vals]


def _daily(per_year: float) -> int:
    return threshold(min(1.0, max(0.0, float(per_year)) / 365.0))


def build_behaviour(catalogue: Any, scenario: Any, policy: PolicyTables) -> tuple[dict[str, np.ndarray], int]:
    """Behaviour tables for the kernel, and the number of (channel, act) false-record pairs."""
    acts = list(catalogue.acts)
    channels = list(catalogue.channels)
    services = list(catalogue.services)
    regions = list(scenario.regions)
    A, H, S, R = len(acts), len(channels), len(services), len(regions)
    E = policy.epoch_start.shape[0]
    if A > 126:  # repeat escalation keeps an act (+ 1) in 7 bits (kernel.step.escalate)
        raise UserError(f"the catalogue has {A} acts, more than the 126 the kernel can tell apart")
    act_ix = {a.id: k for k, a in enumerate(acts)}
    chan_ix = {c.id: k for k, c in enumerate(channels)}
    beh = _get(scenario, "behaviour")
    fb = _get(scenario, "feedback")
    act_over = _get(beh, "acts", {}) or {}
    chan_over = _get(beh, "channels", {}) or {}
    svc_over = _get(beh, "services", {}) or {}

    def act_param(a: Any, name: str, default: Any) -> Any:
        o = act_over.get(a.id)
        v = _get(o, name)
        return v if v is not None else _get(a, name, default)

    def chan_param(c: Any, name: str, default: Any) -> Any:
        o = chan_over.get(c.id)
        v = _get(o, name)
        return v if v is not None else _get(c, name, default)

    def svc_param(s: Any, name: str, default: Any) -> Any:
        o = svc_over.get(s.id)
        v = _get(o, name)
        return v if v is not None else _get(s, name, default)

    density = np.ones((R, H), dtype=np.float64)
    for r, reg in enumerate(regions):
        for cid, d in (_get(reg, "surveillance", {}) or {}).items():
            if cid in chan_ix:
                density[r, chan_ix[cid]] = float(d)
    coverage = np.zeros((H, R), dtype=np.float64)
    for h, c in enumerate(channels):
        for r in range(R):
            coverage[h, r] = min(1.0, float(chan_param(c, "coverage", 0.0)) * density[r, h])

    kind_of = {"citizen": 0, "business": 1}
    t: dict[str, np.ndarray] = {}
    t["act_kind"] = np.array([kind_of[str(a.kind)] for a in acts], dtype=np.int64)
    t["act_obligation"] = np.array([1 if _get(a, "obligation", False) else 0 for a in acts],
                                   dtype=np.int64)
    # the share of an act's obligations met on the day, on the act's own draw (DRAW_MET)
    t["act_met_thr"] = np.array([threshold(float(act_param(a, "met_at_once", 0.0)))
                                 if _get(a, "obligation", False) else 0 for a in acts],
                                dtype=np.int64)
    # A dated rate (a scenario's history, DESIGN 2.1) is its largest value here and a factor
    # per epoch, folded into act_mod_policy below; a constant rate has the factor 1 exactly.
    act_thr = np.zeros((R, A), dtype=np.int64)
    rate_factor = np.ones((E, A), dtype=np.float64)
    epoch_days = [_EPOCH + dt.timedelta(days=int(d)) for d in policy.epoch_start]
    for k, a in enumerate(acts):
        rate = act_param(a, "rate_per_year", 0.0)
        if hasattr(rate, "at"):  # a Dated history
            top = max(float(v) for v in rate.values())
            act_thr[:, k] = _daily(top)
            if not rate.is_constant and top > 0:
                for e, day in enumerate(epoch_days):
                    rate_factor[e, k] = float(rate.at(day)) / top
        else:
            act_thr[:, k] = _daily(float(rate))
    t["act_thr"] = act_thr
    for name, n, key in (("income", 4, "act_mod_income"), ("education", 4, "act_mod_edu"),
                         ("age", 4, "act_mod_age"), ("urban", 2, "act_mod_urban")):
        arr = np.zeros((A, n), dtype=np.int64)
        for k, a in enumerate(acts):
            band = "size" if name == "income" and t["act_kind"][k] == 1 else name
            o = act_over.get(a.id)
            vals = _mods(o, band, n) if _get(_get(o, "modifiers"), band) is not None else _mods(a, band, n)
            arr[k] = [q8(v) for v in vals]
        t[key] = arr
    cap = q8(MOD_CAP)
    t["mod_cap"] = np.array([cap], dtype=np.int64)
    chans = np.full((A, MAX_ACT_CHANNELS), -1, dtype=np.int64)
    for k, a in enumerate(acts):
        for j, cid in enumerate(list(_get(a, "channels", []) or [])[:MAX_ACT_CHANNELS]):
            chans[k, j] = chan_ix[cid]
    t["act_channels"] = chans

    # feedback: deterrence, chilling and uptake depend on what the policy does with an act
    deter = bool(_get(fb, "deterrence", False))
    chill = bool(_get(fb, "chilling", False))
    uptake = bool(_get(fb, "uptake", False))
    strength = _get(beh, "deterrence_strength", 0.5)
    chill_strength = _get(beh, "chilling_strength", 0.6)
    uptake_strength = _get(beh, "uptake_strength", 0.3)
    penalised = (policy.act_points < 0) | (policy.list_acts.max(axis=2) > 0 if policy.list_acts.size else np.zeros_like(policy.act_points, dtype=bool))
    rewarded = policy.act_points > 0
    mod_policy = np.full((E, R, A), 256, dtype=np.int64)
    for k, a in enumerate(acts):
        first = chans[k, 0]
        cov = coverage[first] if first >= 0 else np.zeros(R)
        speech = str(_get(a, "category", "")) == "speech"
        for e in range(E):
            for r in range(R):
                f = 1.0
                if penalised[e, r, k]:
                    if deter:
                        f *= 1.0 - float(strength) * cov[r]
                    if chill and speech:
                        f *= 1.0 - float(chill_strength) * cov[r]
                if rewarded[e, r, k] and uptake:
                    f *= 1.0 + float(uptake_strength)
                if rate_factor[e, k] != 1.0:
                    f *= rate_factor[e, k]
                mod_policy[e, r, k] = q8(max(0.0, f))
    t["act_mod_policy"] = mod_policy
    listed_factor = float(_get(beh, "listed_act_factor", 0.8)) if deter else 1.0
    t["act_mod_listed"] = np.array(
        [q8(listed_factor) if _get(a, "valence", "") == "penalised" else 256 for a in acts],
        dtype=np.int64)

    # the largest threshold each act can reach under its modifiers (computed with the
    # kernel's own truncating Q8 arithmetic): it bounds the act's part of its slot
    act_max = np.zeros((R, A), dtype=np.int64)
    for k in range(A):
        m = 256
        if t["act_kind"][k] == 0:
            for key in ("act_mod_income", "act_mod_edu", "act_mod_age", "act_mod_urban"):
                m = (m * int(t[key][k].max())) >> 8
        else:
            m = (m * int(t["act_mod_income"][k].max())) >> 8
        for r in range(R):
            mr = (m * int(mod_policy[:, r, k].max())) >> 8
            mr = max(mr, (mr * int(t["act_mod_listed"][k])) >> 8)
            mr = min(mr, cap)
            act_max[r, k] = min((int(act_thr[r, k]) * mr) >> 8, ONE)
    t["act_max"] = act_max
    t["act_slot"], t["act_slot_max"] = _slots(act_max, t["act_kind"], ACT_SLOTS, "acts")
    # an act that can be likelier than its slot is wide takes the rest from a draw of its own
    over, over_n, over_q = _overflow(act_max[:, None, :], t["act_kind"], ACT_W, ACT_SLOTS)
    t["act_over"], t["act_over_n"], t["act_over_q"] = over, over_n, over_q[:, 0]
    t["chan_cov"] = np.array([[threshold(coverage[h, r]) for r in range(R)] for h in range(H)],
                             dtype=np.int64).reshape(H, R)
    t["chan_delay"] = np.array([int(chan_param(c, "delay_days", 0)) for c in channels],
                               dtype=np.int64)
    if t["chan_delay"].size and t["chan_delay"].max() > 1023:
        raise ValueError("a channel's delay exceeds 1023 days")
    misid_age = np.full((H, 4), 256, dtype=np.int64)
    misid_inc = np.full((H, 4), 256, dtype=np.int64)
    for h, c in enumerate(channels):
        mm = _get(c, "misid_modifiers") or {}
        if _get(mm, "age") is not None:
            misid_age[h] = [q8(v) for v in _get(mm, "age")]
        if _get(mm, "income") is not None:
            misid_inc[h] = [q8(v) for v in _get(mm, "income")]
    t["chan_misid_age"] = misid_age
    t["chan_misid_income"] = misid_inc
    pairs: list[tuple[int, int]] = []
    for h, c in enumerate(channels):
        for aid in _get(c, "false_acts", []) or []:
            pairs.append((h, act_ix[aid]))
    NP = len(pairs)
    t["pair_chan"] = np.array([p[0] for p in pairs], dtype=np.int64)
    t["pair_act"] = np.array([p[1] for p in pairs], dtype=np.int64)
    t["pair_kind"] = np.array([t["act_kind"][p[1]] for p in pairs], dtype=np.int64)
    pair_thr = np.zeros((R, NP), dtype=np.int64)
    pair_misid = np.zeros((R, NP), dtype=np.int64)
    pair_max = np.zeros((R, NP), dtype=np.int64)
    nfalse = {h: sum(1 for p in pairs if p[0] == h) for h in range(H)}
    for p, (h, _a) in enumerate(pairs):
        c = channels[h]
        n = max(1, nfalse[h])
        mcap = (int(misid_age[h].max()) * int(misid_inc[h].max())) >> 8
        for r in range(R):
            d = density[r, h]
            pair_thr[r, p] = _daily(float(chan_param(c, "false_per_year", 0.0)) * d / n)
            pair_misid[r, p] = _daily(float(chan_param(c, "misid_per_year", 0.0)) * d / n)
            pair_max[r, p] = pair_thr[r, p] + ((pair_misid[r, p] * mcap) >> 8)
    t["pair_thr"] = pair_thr
    t["pair_misid"] = pair_misid
    t["pair_max"] = pair_max
    if pair_max.size and pair_max.max() > ACT_W:
        r, p = (int(v) for v in np.argwhere(pair_max > ACT_W)[0])
        raise UserError(
            f"channel '{channels[pairs[p][0]].id}' makes false records of "
            f"'{acts[pairs[p][1]].id}' {pair_max[r, p] * 365 / ONE:.2f} times a year in region "
            f"'{regions[r].id}', more than the {ACT_W * 365 / ONE:.2f} a year the draw layout allows")
    t["pair_slot"], t["pair_slot_max"] = _slots(pair_max, t["pair_kind"], ACT_SLOTS,
                                                "false-record pairs (channel, act)")

    t["svc_kind"] = np.array([kind_of[str(s.kind)] for s in services], dtype=np.int64)
    t.update(_service_tables(services, t["svc_kind"], svc_param, fb, epoch_days))
    # per epoch: the share of listed subjects who know it may be dated (its publicity grew)
    aware = _get(beh, "awareness", 0.11)
    t["aware_thr"] = np.array([threshold(float(aware.at(day) if hasattr(aware, "at") else aware))
                               for day in epoch_days], dtype=np.int64)
    t["listed_request_factor"] = np.array([q8(float(_get(beh, "listed_request_factor", 0.5)))],
                                          dtype=np.int64)
    obj = _get(beh, "objection") or {}
    t["obj_thr"] = np.array([threshold(float(_get(obj, "base", 0.05)))], dtype=np.int64)
    t["obj_mod_edu"] = np.array([q8(v) for v in (_get(obj, "education") or [1.0] * 4)],
                                dtype=np.int64)
    t["obj_mod_income"] = np.array([q8(v) for v in (_get(obj, "income") or [1.0] * 4)],
                                   dtype=np.int64)
    t["repay_thr"] = np.array([_daily(float(_get(beh, "repayment_per_year", 2.0)))],
                              dtype=np.int64)
    comp = bool(_get(fb, "compliance", False))
    # compliance under pressure (DESIGN 2.8): with the switch off, listing changes nothing
    factor = float(_get(beh, "compliance_factor", 3.0)) if comp else 1.0
    t["repay_listed_mod"] = np.array([q8(factor)], dtype=np.int64)
    t["econ_drop_thr"] = np.array([threshold(ECON_DROP)], dtype=np.int64)
    M = len(policy.measure_names)
    svc_measures = np.full((S, max(M, 1)), -1, dtype=np.int64)
    svc_n = np.zeros(S, dtype=np.int64)
    for m_ix in range(M):
        s_ix = int(policy.measure_service[m_ix])
        svc_measures[s_ix, svc_n[s_ix]] = m_ix
        svc_n[s_ix] += 1
    t["svc_measures"] = svc_measures[:, :M] if M else np.zeros((S, 0), np.int64)
    t["svc_nmeasures"] = svc_n
    t["svc_plain"] = _plain_table(policy, S)
    return t, NP


def _band_values(kind: int, bands: int) -> dict[str, int]:
    """The band indices a bands byte stands for (see socialcredit.population)."""
    if kind == 0:
        return {"income": bands & 3, "education": (bands >> 2) & 3, "age": (bands >> 4) & 3,
                "urban": (bands >> 6) & 1}
    return {"size": bands & 3}


def _service_tables(services: list, svc_kind: np.ndarray, svc_param: Any, fb: Any,
                    epoch_days: list[dt.date]) -> dict[str, np.ndarray]:
    """Service request thresholds for every period, month, kind and bands row
    (``kernel.step.svc_row``), laid out in the fixed slots of the request draw.

    The j-th service of a kind, in catalogue order, owns slot j of that kind's request draw
    (``SVC_SLOTS`` slots of ``SVC_W``): a draw falls in at most one slot, and is a request
    when its place in the slot is below that service's threshold for the month and the
    subject's bands. A slot's place never depends on a rate, so one service's rate or season
    moves no other service's requests (DESIGN 2.9). A service out of its season, and age bands
    that do not ask, get threshold 0. The rates depend on the month, the kind and the income,
    education, age and urban bands only (not on the region or on consent), so the rows are
    ``(month0 * 2 + kind) * 128 + (bands & 127)``, of which one day reads 256. Rows have
    ``SVC_COLS`` columns (the slots, then zeros), so the slot a draw names is always a
    column.

    A dated ``demand`` makes the rates differ between epochs: the epochs whose demands are
    all equal share a *period*, and the tables hold twelve months per period, period by
    period (``svc_period[e]``, which the calendar folds into the day's month: the month index
    the kernel reads is ``period * 12 + month``). Without a dated demand there is one period
    and the tables are those of twelve months."""
    S = len(services)
    E = len(epoch_days)
    demand = np.ones((E, S), dtype=np.float64)
    for k, s in enumerate(services):
        d = svc_param(s, "demand", 1.0)
        for e, day in enumerate(epoch_days):
            demand[e, k] = float(d.at(day)) if hasattr(d, "at") else float(d)
    if E:
        levels, period = np.unique(demand, axis=0, return_inverse=True)
    else:
        levels, period = np.ones((1, S)), np.zeros(0, dtype=np.int64)
    NP = levels.shape[0]
    year = np.zeros((NP, 2, 128, S), dtype=np.int64)
    months = np.zeros((12, S), dtype=bool)
    retry = np.zeros(S, dtype=np.int64)
    econ = np.zeros(S, dtype=np.int64)
    slot = np.full((2, SVC_COLS), -1, dtype=np.int64)
    col = np.zeros(S, dtype=np.int64)
    used = [0, 0]
    for k, s in enumerate(services):
        kd = int(svc_kind[k])
        if used[kd] >= SVC_SLOTS:
            raise UserError(f"the catalogue has more than {SVC_SLOTS} services of one kind of "
                            "subject, more than the request draw has slots for")
        col[k] = used[kd]
        slot[kd, used[kd]] = k
        used[kd] += 1
        ms = list(_get(s, "months", None) or range(1, 13))
        months[[m - 1 for m in ms], k] = True
        ages = set(_get(s, "ages", None) or [1, 2, 3])
        per_year = float(svc_param(s, "requests_per_year", 0.0)) * 12.0 / len(ms)
        retry[k] = threshold(float(svc_param(s, "retry", 0.0)))
        econ[k] = 1 if (s.id in ECONOMIC_SERVICES and bool(_get(fb, "economic", False))) else 0
        axes = ("income", "education", "age", "urban") if kd == 0 else ("size",)
        mods = {ax: [q8(v) for v in _mods(s, ax, 2 if ax == "urban" else 4)] for ax in axes}
        for p in range(NP):
            base = _daily(per_year * float(levels[p, k]))  # x 1.0 is x exactly
            for b in range(128):
                bv = _band_values(kd, b)
                if kd == 0 and bv["age"] not in ages:
                    continue
                thr = base
                for ax in axes:
                    thr = (thr * mods[ax][bv[ax]]) >> 8
                year[p, kd, b, k] = thr
    thr_b = np.zeros((NP, 12, 2, 128, SVC_COLS), dtype=np.int64)
    for k in range(S):
        kd = int(svc_kind[k])
        thr_b[:, :, kd, :, col[k]] = year[:, None, kd, :, k] * months[None, :, k, None]
    # a service that some subjects ask for more often than its slot allows takes the rest
    # from a draw of its own; the largest such threshold per period, month and kind
    per_month = (year[:, None] * months[None, :, None, None, :]).max(axis=3)  # [NP, 12, 2, S]
    over, over_n, _ = _overflow(per_month.max(axis=(0, 1, 2))[None, None, :], svc_kind, SVC_W,
                                SVC_COLS)
    q = np.zeros((NP, 12, 2, SVC_COLS), dtype=np.int64)
    for kd in range(2):
        for j in range(int(over_n[kd])):
            k = int(over[kd, j])
            q[:, :, kd, j] = [[overflow_q(int(v), SVC_W) for v in row]
                              for row in per_month[:, :, kd, k]]
    return {"svc_thr_b": thr_b.reshape(NP * 12, 2, 128, SVC_COLS), "svc_slot": slot,
            "svc_col": col, "svc_retry_thr": retry, "svc_economic": econ, "svc_over": over,
            "svc_over_n": over_n, "svc_over_q": q.reshape(NP * 12, 2, SVC_COLS),
            "svc_period": np.asarray(period, dtype=np.int64).reshape(-1)}


def _plain_table(policy: PolicyTables, S: int) -> np.ndarray:
    """Which requests the quiet path may grant without the full decision.

    ``plain[e, r, k, g, s]`` for k = 0 adult citizen, 1 child, 2 business and grade g of an
    unlisted subject: 1 when no measure of service s can apply, 2 when only a measure that
    reaches a business's legal representative could (the kernel then checks that the citizen
    represents no business), 0 when the full decision is needed."""
    from socialcredit.policy.tables import (
        REACH_CHILDREN,
        REACH_REPRESENTATIVE,
        REACH_REPRESENTED_BUSINESS,
        REACH_SUBJECT,
    )

    E, R = policy.epoch_start.shape[0], len(policy.region_names)
    M = len(policy.measure_names)
    plain = np.ones((E, R, 3, 16, S), dtype=np.int64)
    for e in range(E):
        for r in range(R):
            for m in range(M):
                if not policy.measure_active[e, r, m]:
                    continue
                s = int(policy.measure_service[m])
                reach = int(policy.measure_reach[e, r, m])
                lo, hi = int(policy.measure_grade_lo[e, r, m]), int(policy.measure_grade_hi[e, r, m])
                for k in range(3):
                    for g in range(16):
                        if reach & REACH_SUBJECT and lo >= 0 and g != 15 and lo <= g <= hi:
                            plain[e, r, k, g, s] = 0
                        if reach & REACH_CHILDREN and k == 1:
                            plain[e, r, k, g, s] = 0
                        if reach & REACH_REPRESENTED_BUSINESS and k == 2:
                            plain[e, r, k, g, s] = 0
                        if reach & REACH_REPRESENTATIVE and k < 2 and plain[e, r, k, g, s] == 1:
                            plain[e, r, k, g, s] = 2
    return plain


def overflow_q(p: int, width: int) -> int:
    """The threshold of an act's (or service's) own overflow draw when its threshold ``p``
    exceeds its slot's ``width``: it happens when the draw lands in its slot (probability
    w = width / 2**32) or, failing that, when its own draw falls below q, with
    w + (1 - w) q = p / 2**32. The kernels compute the same (``kernel.step.overflow_thr``)."""
    if p <= width:
        return 0
    return min(ONE, (p - width) * (ONE // width) // (ONE // width - 1))


def _overflow(widths: np.ndarray, kinds: np.ndarray, width: int,
              n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which acts (or services) of each kind can exceed their slot's ``width`` anywhere
    (``widths``: ``[R, X, N]`` their largest thresholds), listed per kind (``[2, n]``, -1
    padded), how many (``[2]``), and the largest threshold of their own draws
    (``[R, X, 2, n]`` per row of ``widths``' first two axes)."""
    R, X, N = widths.shape
    over = np.full((2, n), -1, dtype=np.int64)
    count = np.zeros(2, dtype=np.int64)
    q = np.zeros((R, X, 2, n), dtype=np.int64)
    for k in range(N):
        if widths[:, :, k].max(initial=0) <= width:
            continue
        kd = int(kinds[k])
        j = int(count[kd])
        over[kd, j] = k
        count[kd] += 1
        for r in range(R):
            for x in range(X):
                q[r, x, kd, j] = overflow_q(int(widths[r, x, k]), width)
    return over, count, q


def _slots(widths: np.ndarray, kinds: np.ndarray, n_slots: int,
           what: str) -> tuple[np.ndarray, np.ndarray]:
    """The fixed draw layout of acts or false-record pairs (DESIGN 2.9).

    The j-th act (or pair) of a kind, in catalogue order, owns slot j of that kind's draw:
    the draw's top bits name the slot, its low bits are compared with the act's own
    threshold. A slot's place depends on nothing but the catalogue, so no rate, policy or
    feedback switch moves another act's draws. Returns the slot table (``[2, n_slots]``,
    the index in each slot or -1) and each slot's largest threshold per region and kind
    (``[R, 2, n_slots]``), which lets the quiet paths rule a slot out with one compare."""
    R, N = widths.shape
    slot = np.full((2, n_slots), -1, dtype=np.int64)
    slot_max = np.zeros((R, 2, n_slots), dtype=np.int64)
    used = [0, 0]
    for k in range(N):
        kd = int(kinds[k])
        j = used[kd]
        if j >= n_slots:
            raise UserError(f"the catalogue has more than {n_slots} {what} of one kind of subject, "
                            "more than the draw layout has slots for")
        used[kd] += 1
        slot[kd, j] = k
        slot_max[:, kd, j] = widths[:, k]
    return slot, slot_max
