"""Compiling layered policies into :class:`~socialcredit.policy.tables.PolicyTables`.

The kernel never parses YAML (DESIGN 2.6): everything it needs is an integer in a dense
table indexed by epoch, region and act, list or measure. Compilation

1. layers the baseline, each region's extension and the reforms into one policy per region,
2. cuts the calendar into epochs wherever any dated value, ``from`` or ``until`` changes
   within the run (and merges epochs that turn out identical),
3. gives lists and measures global ids (their union over regions, first seen first) and
   switches them on per region and epoch,
4. turns probabilities into thresholds with :func:`socialcredit.rng.threshold`.

No randomness and no floating point reach the tables except through ``threshold``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from socialcredit import rng
from socialcredit.catalogue import KINDS, Catalogue, load_catalogue
from socialcredit.catalogue.yamlsource import did_you_mean
from socialcredit.errors import UserError
from socialcredit.policy.checks import change_dates, check_policy, grade_names, scoring_ever
from socialcredit.policy.layering import layer
from socialcredit.policy.loading import load_policy
from socialcredit.policy.schema import (
    Item,
    ListDef,
    Measure,
    PolicyDocument,
    RepairTerms,
    ScoreKind,
)
from socialcredit.policy.tables import (
    CADENCE_DAILY,
    CADENCE_MONTHLY,
    CADENCE_YEARLY,
    EFFECT_DENY,
    EFFECT_FAST_TRACK,
    EFFECT_THROTTLE,
    LIST_BLACK,
    LIST_RED,
    MAX_CAPPED_CATEGORIES,
    MAX_LISTS,
    REACH_CHILDREN,
    REACH_REPRESENTATIVE,
    REACH_REPRESENTED_BUSINESS,
    REACH_SUBJECT,
    PolicyTables,
)

PolicyRef = str | Path | PolicyDocument
EPOCH = dt.date(1970, 1, 1)

CADENCES = {"daily": CADENCE_DAILY, "monthly": CADENCE_MONTHLY, "yearly": CADENCE_YEARLY}
REACHES = {
    "subject": REACH_SUBJECT,
    "children": REACH_CHILDREN,
    "representative": REACH_REPRESENTATIVE,
    "represented_business": REACH_REPRESENTED_BUSINESS,
}
EFFECTS = {"deny": EFFECT_DENY, "fast_track": EFFECT_FAST_TRACK, "throttle": EFFECT_THROTTLE}


def _a(kind: str | None) -> str:
    return f"an {kind}" if kind and kind[0] in "aeiou" else f"a {kind}"


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 (the tables' day numbers)."""
    return (day - EPOCH).days


def as_policy(ref: PolicyRef, catalogue: Catalogue | None = None) -> PolicyDocument:
    """A loaded, layered policy from a name, a path or an already loaded document."""
    return ref if isinstance(ref, PolicyDocument) else load_policy(ref, catalogue)


#: The keys of an item that make up each kind of compiled rule.
RULE_KEYS = {
    "score": {"act", "points", "validity_years", "escalation_pct", "from_", "until", "regions"},
    "override": {"act", "grade", "days", "from_", "until", "regions"},
    ".acts": {"entry"},
    ".grades": {"entry"},
    ".after": {"entry"},
}


def rule_source(item: Item, section: str, suffix: str = "") -> tuple[str, str]:
    """The name and reference of a compiled rule, e.g. ``rongcheng.score.traffic_ticket``.

    The name starts with the policy that last wrote the part of the item the rule is made
    of, so a reform that only changes a list's term leaves its entry rule national.
    """
    policy, ref = item.source_of(RULE_KEYS[suffix or section])
    return f"{policy}.{section}.{item.id}{suffix}", ref or ""


def section(doc: PolicyDocument, kind: str) -> ScoreKind | None:
    """A policy's score section for one subject kind, if it has one."""
    return getattr(doc.score, kind) if doc.score is not None else None


def _is_subsequence(short: Sequence[str], long: Sequence[str]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def layered_for_region(
    baseline: PolicyDocument,
    extension: PolicyDocument | None,
    reforms: Sequence[PolicyDocument],
    catalogue: Catalogue,
    used: list[bool] | None = None,
) -> PolicyDocument:
    """One region's policy: the baseline, its extension, then the reforms that apply there.

    A reform applies where the policy it extends is part of the region's layers (a reform of
    the baseline applies everywhere; a reform of an extension only where that extension does).
    """
    doc = baseline
    if extension is not None:
        if extension.kind != "extension":
            raise UserError(f"'{extension.name}' is {_a(extension.kind)}, not a regional extension")
        if extension.layers[0] != baseline.name:
            raise UserError(
                f"the extension '{extension.name}' extends '{extension.layers[0]}', "
                f"not the baseline '{baseline.name}' of this run"
            )
        doc = extension
    for i, reform in enumerate(reforms):
        assert reform.base is not None
        if _is_subsequence(reform.base.layers, doc.layers):
            doc = layer(doc, reform.own)
            if used is not None:
                used[i] = True
    if doc is not baseline and doc is not extension:
        check_policy(doc, catalogue)
    return doc


@dataclass
class _Rules:
    names: list[str]
    references: list[str]
    index: dict[str, int]

    def add(self, source: tuple[str, str]) -> int:
        name, ref = source
        key = f"{name}\x00{ref}"
        if key not in self.index:
            self.index[key] = len(self.names)
            self.names.append(name)
            self.references.append(ref)
        return self.index[key]


def _global_ids(docs: list[PolicyDocument]) -> tuple[list[ListDef], list[Measure]]:
    lists: dict[str, ListDef] = {}
    measures: dict[str, Measure] = {}
    for doc in docs:
        for lst in doc.lists or []:
            assert lst.id is not None
            first = lists.get(lst.id)
            if first is None:
                lists[lst.id] = lst
                if len(lists) > MAX_LISTS:
                    raise lst.error(
                        f"the regions of this run use more than {MAX_LISTS} lists together "
                        f"(the list '{lst.id}' is one too many)"
                    )
            elif (first.kind, first.subject) != (lst.kind, lst.subject):
                raise lst.error(
                    f"the list '{lst.id}' is a {lst.kind} list of {lst.subject}s here but a "
                    f"{first.kind} list of {first.subject}s in {first.where()}"
                )
        for m in doc.measures or []:
            assert m.id is not None
            first_m = measures.get(m.id)
            if first_m is None:
                measures[m.id] = m
            elif (first_m.service, first_m.effect) != (m.service, m.effect):
                raise m.error(
                    f"the measure '{m.id}' decides '{m.service}' ({m.effect}) here but "
                    f"'{first_m.service}' ({first_m.effect}) in {first_m.where()}"
                )
    throttles = [m for m in measures.values() if m.effect == "throttle"]
    for m in throttles[1:]:
        if m.service != throttles[0].service:
            # a subject has one throttled connection (one bit of state, docs/state.md)
            raise m.error(
                f"the measure '{m.id}' throttles '{m.service}', but '{throttles[0].id}' "
                f"throttles '{throttles[0].service}' in {throttles[0].where()}: the regions of "
                "a run may throttle one service only"
            )
    return list(lists.values()), list(measures.values())


class _Builder:
    """Fills one epoch-region slice of the tables at a time."""

    def __init__(self, cat: Catalogue, names: list[str], docs: list[PolicyDocument],
                 lists: list[ListDef], measures: list[Measure], n_epochs: int) -> None:
        self.cat = cat
        self.docs = docs
        self.region_names = names
        self.lists = lists
        self.measures = measures
        self.list_index = {lst.id: i for i, lst in enumerate(lists)}
        self.rules = _Rules([], [], {})
        E, R, K = n_epochs, len(names), len(KINDS)
        A, L, M = len(cat.acts), len(lists), len(measures)
        G = max([1] + [len(grade_names(section(d, k))) for d in docs for k in KINDS])
        self.G = G

        def z(shape: tuple[int, ...], dtype: Any, fill: int = 0) -> np.ndarray:
            return np.full(shape, fill, dtype=dtype)

        self.t: dict[str, np.ndarray] = {
            "scoring": z((E, R, K), np.uint8),
            "score_start": z((E, R, K), np.int16),
            "score_floor": z((E, R, K), np.int16),
            "score_ceiling": z((E, R, K), np.int16),
            "consent_required": z((E, R), np.uint8),
            "min_age_band": z((E, R), np.uint8, 1),
            "cadence": z((E, R, K), np.uint8),
            "n_grades": z((E, R, K), np.uint8),
            "grade_floor": z((E, R, K, G), np.int16, -32768),
            "act_points": z((E, R, A), np.int16),
            "act_rule": z((E, R, A), np.int16, -1),
            "act_validity": z((E, R, A), np.uint8),
            "act_escalation_pct": z((E, R, A), np.int16),
            "cap_category": z((E, R, MAX_CAPPED_CATEGORIES), np.int16, -1),
            "cap_points": z((E, R, MAX_CAPPED_CATEGORIES), np.int16),
            "override_grade": z((E, R, A), np.int8, -1),
            "override_days": z((E, R, A), np.int16),
            "override_rule": z((E, R, A), np.int16, -1),
            "list_active": z((E, R, L), np.uint8),
            "list_acts": z((E, R, L, A), np.uint8),
            "list_k": z((E, R, L), np.uint8, 1),
            "list_window": z((E, R, L), np.uint16),
            "list_entry_rule": z((E, R, L), np.int16, -1),
            "list_grade_lo": z((E, R, L), np.int8, -1),
            "list_grade_hi": z((E, R, L), np.int8, -1),
            "list_grade_rule": z((E, R, L), np.int16, -1),
            "list_from": z((E, R, L), np.int8, -1),
            "list_from_days": z((E, R, L), np.uint16),
            "list_from_moves": z((E, R, L), np.uint8),
            "list_from_rule": z((E, R, L), np.int16, -1),
            "list_term": z((E, R, L), np.uint16),
            "list_extend": z((E, R, L), np.uint16),
            "list_exit_obligation": z((E, R, L), np.uint8),
            "list_repair_min": z((E, R, L), np.uint16),
            "list_repair_thr": z((E, R, L), np.uint64),
            "measure_active": z((E, R, M), np.uint8),
            "measure_lists": z((E, R, M), np.uint16),
            "measure_grade_lo": z((E, R, M), np.int8, -1),
            "measure_grade_hi": z((E, R, M), np.int8, -1),
            "measure_reach": z((E, R, M), np.uint8),
            "objection_window": z((E, R), np.uint16),
            "appeal_delay": z((E, R), np.uint16),
            "appeal_win_true_thr": z((E, R), np.uint64),
            "appeal_win_false_thr": z((E, R), np.uint64),
        }

    def _scoring(self, s: ScoreKind | None, day: dt.date) -> bool:
        return s is not None and (s.enabled is None or bool(s.enabled.at(day)))

    def _grade_span(self, s: ScoreKind | None, names: list[str]) -> tuple[int, int]:
        known = grade_names(s)
        idx = [known.index(n) for n in names]
        return min(idx), max(idx)

    def fill(self, e: int, r: int, day: dt.date) -> None:
        doc, region = self.docs[r], self.region_names[r]
        t = self.t
        scoring = [False, False]
        caps: list[tuple[int, int, Any]] = []
        for k, kind in enumerate(KINDS):
            s = section(doc, kind)
            if kind == "citizen" and s is not None:
                if s.consent_required is not None:
                    t["consent_required"][e, r] = int(s.consent_required.at(day))
                if s.min_age_band is not None:
                    t["min_age_band"][e, r] = s.min_age_band.at(day)
            if not self._scoring(s, day):
                continue
            assert s is not None and s.start and s.floor and s.ceiling and s.cadence and s.grades
            scoring[k] = True
            t["scoring"][e, r, k] = 1
            t["score_start"][e, r, k] = s.start.at(day)
            t["score_floor"][e, r, k] = s.floor.at(day)
            t["score_ceiling"][e, r, k] = s.ceiling.at(day)
            t["cadence"][e, r, k] = CADENCES[s.cadence.at(day)]
            t["n_grades"][e, r, k] = len(s.grades)
            for g, grade in enumerate(s.grades):
                t["grade_floor"][e, r, k, g] = grade.min.at(day) if grade.min is not None else s.floor.at(day)
            for rule in s.rules or []:
                if not (rule.in_force(day) and rule.applies_in(region)):
                    continue
                assert rule.act is not None and rule.points is not None
                a = self.cat.act_index[rule.act]
                t["act_points"][e, r, a] = rule.points.at(day)
                t["act_rule"][e, r, a] = self.rules.add(rule_source(rule, "score"))
                t["act_validity"][e, r, a] = rule.validity_years.at(day) if rule.validity_years else 0
                t["act_escalation_pct"][e, r, a] = rule.escalation_pct.at(day) if rule.escalation_pct else 0
            for ov in s.overrides or []:
                if not (ov.in_force(day) and ov.applies_in(region)):
                    continue
                assert ov.act is not None and ov.grade is not None and ov.days is not None
                a = self.cat.act_index[ov.act]
                t["override_grade"][e, r, a] = grade_names(s).index(ov.grade)
                t["override_days"][e, r, a] = ov.days.at(day)
                t["override_rule"][e, r, a] = self.rules.add(rule_source(ov, "override"))
            for cap in s.caps or []:
                caps.append((self.cat.category_index[str(cap.category)], cap.points.at(day) if cap.points else 0, cap))
        if len(caps) > MAX_CAPPED_CATEGORIES:
            raise caps[MAX_CAPPED_CATEGORIES][2].error(
                f"region '{region}' caps more than {MAX_CAPPED_CATEGORIES} categories"
            )
        for i, (c, pts, _) in enumerate(caps):
            t["cap_category"][e, r, i] = c
            t["cap_points"][e, r, i] = pts
        self._fill_lists(e, r, day, doc, region, scoring)
        self._fill_measures(e, r, day, doc, region, scoring)
        if doc.appeals is not None:
            ap = doc.appeals
            assert ap.objection_window_days and ap.delay_days and ap.win_true and ap.win_false
            t["objection_window"][e, r] = ap.objection_window_days.at(day)
            t["appeal_delay"][e, r] = ap.delay_days.at(day)
            t["appeal_win_true_thr"][e, r] = rng.threshold(ap.win_true.at(day))
            t["appeal_win_false_thr"][e, r] = rng.threshold(ap.win_false.at(day))

    def _fill_lists(self, e: int, r: int, day: dt.date, doc: PolicyDocument, region: str,
                    scoring: list[bool]) -> None:
        t = self.t
        here = {lst.id: lst for lst in doc.lists or []}
        for li, glob in enumerate(self.lists):
            lst = here.get(glob.id)
            if lst is None or not (lst.in_force(day) and lst.applies_in(region)):
                continue
            assert lst.entry is not None and lst.subject is not None
            t["list_active"][e, r, li] = 1
            entry = lst.entry
            if entry.acts:
                for a in entry.acts:
                    t["list_acts"][e, r, li, self.cat.act_index[a]] = 1
                t["list_k"][e, r, li] = entry.k.at(day) if entry.k else 1
                t["list_window"][e, r, li] = entry.window_days.at(day) if entry.window_days else 0
                t["list_entry_rule"][e, r, li] = self.rules.add(rule_source(lst, "list", ".acts"))
            k = KINDS.index(lst.subject)
            if entry.grades and scoring[k]:
                lo, hi = self._grade_span(section(doc, lst.subject), entry.grades)
                t["list_grade_lo"][e, r, li] = lo
                t["list_grade_hi"][e, r, li] = hi
                t["list_grade_rule"][e, r, li] = self.rules.add(rule_source(lst, "list", ".grades"))
            if entry.after is not None:
                after = entry.after
                assert after.days is not None
                t["list_from"][e, r, li] = self.list_index[after.list]
                t["list_from_days"][e, r, li] = after.days.at(day)
                t["list_from_moves"][e, r, li] = int(after.moves.at(day)) if after.moves else 0
                t["list_from_rule"][e, r, li] = self.rules.add(rule_source(lst, "list", ".after"))
            t["list_term"][e, r, li] = lst.term_days.at(day) if lst.term_days else 0
            t["list_extend"][e, r, li] = lst.extend_days.at(day) if lst.extend_days else 0
            ex = lst.exit
            if ex is not None:
                if ex.obligation_met is not None:
                    t["list_exit_obligation"][e, r, li] = int(ex.obligation_met.at(day))
                terms: RepairTerms | None = None
                if ex.repair is True:
                    terms = doc.repair
                elif isinstance(ex.repair, RepairTerms):
                    terms = ex.repair
                if terms is not None:
                    assert terms.min_days is not None and terms.daily_chance is not None
                    t["list_repair_min"][e, r, li] = terms.min_days.at(day)
                    t["list_repair_thr"][e, r, li] = rng.threshold(terms.daily_chance.at(day))

    def _fill_measures(self, e: int, r: int, day: dt.date, doc: PolicyDocument, region: str,
                       scoring: list[bool]) -> None:
        t = self.t
        here = {m.id: m for m in doc.measures or []}
        for mi, glob in enumerate(self.measures):
            m = here.get(glob.id)
            if m is None or not (m.in_force(day) and m.applies_in(region)):
                continue
            assert m.trigger is not None and m.reach is not None and m.service is not None
            trig = m.trigger
            mask = 0
            for name in trig.lists or []:
                li = self.list_index[name]
                if t["list_active"][e, r, li]:
                    mask |= 1 << li
            lo = hi = -1
            if trig.grades:
                kind = trig.subject or self.cat.service(m.service).kind
                if scoring[KINDS.index(kind)]:
                    lo, hi = self._grade_span(section(doc, kind), trig.grades)
            if mask == 0 and lo < 0:
                continue  # nothing here can set it off
            t["measure_active"][e, r, mi] = 1
            t["measure_lists"][e, r, mi] = mask
            t["measure_grade_lo"][e, r, mi] = lo
            t["measure_grade_hi"][e, r, mi] = hi
            reach = 0
            for name in m.reach:
                reach |= REACHES[name]
            t["measure_reach"][e, r, mi] = reach


def compile_policy(
    baseline: PolicyRef,
    regions: Sequence[tuple[str, PolicyRef | None]],
    reforms: Sequence[PolicyRef] = (),
    first_day: dt.date = dt.date(2014, 1, 1),
    last_day: dt.date = dt.date(2019, 12, 31),
    catalogue: Catalogue | None = None,
    extra_dates: Sequence[dt.date] = (),
) -> PolicyTables:
    """Compile a baseline, per-region extensions and reforms into the kernel's tables.

    ``extra_dates`` start epochs of their own even where the policy does not change (the
    dates of the scenario's dated behaviour values, which the behaviour tables follow by
    epoch).

    ``regions`` is the scenario's ordered list of ``(region id, extension or None)``; an
    extension is a shipped policy's name, a path or a loaded document. Epochs cover
    ``first_day``..``last_day`` (both inclusive; ``first_day`` includes any burn-in).
    Raises :class:`UserError` for any problem, with file and line where there is one.
    """
    cat = catalogue or load_catalogue()
    if last_day < first_day:
        raise UserError(f"the run ends ({last_day}) before it starts ({first_day})")
    if not regions:
        raise UserError("a run needs at least one region")
    base = as_policy(baseline, cat)
    if base.kind != "baseline":
        raise UserError(f"'{base.name}' is {_a(base.kind)}, not a baseline")
    reform_docs = [as_policy(r, cat) for r in reforms]
    for rd in reform_docs:
        if rd.kind != "reform":
            raise UserError(f"'{rd.name}' is {_a(rd.kind)}, not a reform")
    used = [False] * len(reform_docs)
    names: list[str] = []
    docs: list[PolicyDocument] = []
    memo: dict[int, PolicyDocument] = {}
    for region, ext_ref in regions:
        if region not in cat.region_index:
            raise UserError(f"unknown region '{region}'{did_you_mean(region, cat.region_index)}")
        if region in names:
            raise UserError(f"the region '{region}' is listed twice")
        ext = as_policy(ext_ref, cat) if ext_ref is not None else None
        if ext is not None and ext.kind == "extension" and ext.region not in (None, region):
            raise UserError(
                f"the extension '{ext.name}' is written for the region '{ext.region}', not "
                f"for '{region}'; give '{region}' its own extension or none"
            )
        key = id(ext)
        if key not in memo:
            memo[key] = layered_for_region(base, ext, reform_docs, cat, used)
        names.append(region)
        docs.append(memo[key])
    for rd, was_used in zip(reform_docs, used, strict=True):
        if not was_used:
            raise UserError(
                f"the reform '{rd.name}' changes '{rd.extends}', which no region of this run uses"
            )
    lists, measures = _global_ids(docs)

    dates = {first_day}
    for doc in {id(d): d for d in docs}.values():
        dates |= {d for d in change_dates(doc) if first_day < d <= last_day}
    kept_dates = {d for d in extra_dates if first_day < d <= last_day}
    dates |= kept_dates
    days = sorted(dates)
    b = _Builder(cat, names, docs, lists, measures, len(days))
    for e, day in enumerate(days):
        for r in range(len(names)):
            b.fill(e, r, day)

    keep = [0]
    for e in range(1, len(days)):
        if days[e] in kept_dates or any(not np.array_equal(a[e], a[keep[-1]])
                                        for a in b.t.values()):
            keep.append(e)
    arrays = {k: np.ascontiguousarray(v[keep]) for k, v in b.t.items()}
    epoch_start = np.array([day_number(days[e]) for e in keep], dtype=np.int32)

    grade_table = [
        [grade_names(section(d, k)) if scoring_ever(section(d, k)) else [] for k in KINDS] for d in docs
    ]
    reform_names = [str(rd.name) for rd in reform_docs]
    layer_names = [n for d in docs for n in d.layers[1:] if n not in reform_names]
    name = "+".join(dict.fromkeys([str(base.name), *layer_names, *reform_names]))
    return PolicyTables(
        policy_name=name,
        region_names=names,
        act_names=[a.id for a in cat.acts],
        channel_names=[c.id for c in cat.channels],
        service_names=[s.id for s in cat.services],
        list_names=[str(lst.id) for lst in lists],
        measure_names=[str(m.id) for m in measures],
        rule_names=b.rules.names,
        rule_references=b.rules.references,
        category_names=list(cat.categories),
        grade_names=grade_table,
        epoch_start=epoch_start,
        act_category=np.array([cat.category_index[a.category] for a in cat.acts], dtype=np.int16),
        list_kind=np.array([LIST_BLACK if lst.kind == "black" else LIST_RED for lst in lists], dtype=np.uint8),
        list_subject_kind=np.array([KINDS.index(str(lst.subject)) for lst in lists], dtype=np.uint8),
        measure_service=np.array([cat.service_index[str(m.service)] for m in measures], dtype=np.int16),
        measure_effect=np.array([EFFECTS[str(m.effect)] for m in measures], dtype=np.uint8),
        **arrays,
    )
