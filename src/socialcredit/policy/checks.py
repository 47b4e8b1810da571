"""Checks of a layered policy: completeness, cross-references, and sense.

These run after layering because an extension may refer to lists, grades and rules of its
baseline, and because completeness can only be judged on the whole. Every failure is a
:class:`~socialcredit.errors.UserError` pointing at the file and line that must change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from socialcredit.catalogue import Catalogue
from socialcredit.catalogue.yamlsource import Node, did_you_mean
from socialcredit.errors import UserError
from socialcredit.policy.dated import Dated
from socialcredit.policy.schema import (
    Grade,
    Item,
    ListDef,
    Measure,
    PolicyDocument,
    ScoreKind,
)
from socialcredit.policy.tables import MAX_CAPPED_CATEGORIES, MAX_GRADES, MAX_LISTS

KIND_NAMES = ("citizen", "business")
PLURAL = {"citizen": "citizens", "business": "businesses"}


def _require(node: Node, fields: Iterable[str], what: str) -> None:
    for field in fields:
        if getattr(node, field) is None:
            raise node.error(f"{what} has no '{type(node).key_of(field)}'")


def change_dates(node: Any) -> set[dt.date]:
    """Every date on which some dated value in ``node`` changes (``from``/``until`` included)."""
    out: set[dt.date] = set()
    if isinstance(node, Dated):
        out.update(node.dates())
    elif isinstance(node, Item):
        if node.from_ is not None:
            out.add(node.from_)
        if node.until is not None:
            out.add(node.until + dt.timedelta(days=1))
        for name in type(node).model_fields:
            out |= change_dates(getattr(node, name))
    elif isinstance(node, Node):
        for name in type(node).model_fields:
            out |= change_dates(getattr(node, name))
    elif isinstance(node, list):
        for v in node:
            out |= change_dates(v)
    return out


def ever(value: Dated[Any] | None, test: Any = bool) -> bool:
    """True when some value of the history passes ``test``."""
    return value is not None and any(test(v) for v in value.values())


def scoring_ever(section: ScoreKind | None) -> bool:
    """True when this kind is scored at some date."""
    if section is None:
        return False
    return section.enabled is None or ever(section.enabled)


def grade_names(section: ScoreKind | None) -> list[str]:
    """The grade names of a kind, best first (empty when it has none)."""
    if section is None or not section.grades:
        return []
    return [g.name for g in section.grades if g.name is not None]


def _item_label(item: Item, what: str) -> str:
    return f"the {what} '{item.id}'"


class Checker:
    """Checks one layered policy against the catalogue."""

    def __init__(self, doc: PolicyDocument, catalogue: Catalogue) -> None:
        self.doc = doc
        self.cat = catalogue
        self.score = {
            "citizen": doc.score.citizen if doc.score else None,
            "business": doc.score.business if doc.score else None,
        }

    # --- helpers -------------------------------------------------------------------------------

    def act(self, node: Node, field: str, act_id: str, kind: str | None, what: str) -> None:
        if act_id not in self.cat.act_index:
            raise node.error(
                f"{what} names an unknown act '{act_id}'{did_you_mean(act_id, self.cat.act_index)}",
                field,
            )
        act = self.cat.act(act_id)
        if kind is not None and act.kind != kind:
            raise node.error(
                f"{what} names '{act_id}', an act of a {act.kind}, but applies to {PLURAL[kind]}", field
            )

    def item_basics(self, item: Item, what: str) -> None:
        """What every item needs: known regions, sane dates, a reference, nothing to remove."""
        for r in item.regions or []:
            if r not in self.cat.region_index:
                raise item.error(
                    f"{what} names an unknown region '{r}'{did_you_mean(r, self.cat.region_index)}",
                    "regions",
                )
        if item.from_ and item.until and item.until < item.from_:
            raise item.error(f"{what} ends ('until' {item.until}) before it starts ('from' {item.from_})", "until")
        if item.remove:
            raise item.error(f"{what} says 'remove' but there is nothing to remove it from", "remove")
        if item.reference is None:
            raise item.error(f"{what} has no 'reference' (every rule must cite its source)")

    def grade_range(self, node: Node, field: str, names: list[str], kind: str, what: str) -> tuple[int, int]:
        known = grade_names(self.score[kind])
        if not known:
            raise node.error(f"{what} names grades, but {PLURAL[kind]} have no grades in this policy", field)
        idx = []
        for n in names:
            if n not in known:
                raise node.error(
                    f"{what} names an unknown {kind} grade '{n}'{did_you_mean(n, known)}; "
                    f"the grades are {', '.join(known)}",
                    field,
                )
            idx.append(known.index(n))
        lo, hi = min(idx), max(idx)
        if sorted(set(idx)) != list(range(lo, hi + 1)):
            raise node.error(f"{what} names grades that are not next to each other", field)
        return lo, hi

    # --- the checks ----------------------------------------------------------------------------

    def run(self) -> None:
        doc = self.doc
        if doc.region is not None and doc.region not in self.cat.region_index:
            raise doc.error(
                f"unknown region '{doc.region}'{did_you_mean(doc.region, self.cat.region_index)}",
                "region",
            )
        rule_ids: dict[str, Node] = {}
        for kind in KIND_NAMES:
            section = self.score[kind]
            if section is not None:
                self.score_kind(kind, section, rule_ids)
        lists = doc.lists or []
        self.unique(lists, "list")
        if len(lists) > MAX_LISTS:
            raise lists[MAX_LISTS].error(
                f"the policy has {len(lists)} lists but at most {MAX_LISTS} are possible "
                f"(the list '{lists[MAX_LISTS].id}' is one too many)"
            )
        by_id = {lst.id: lst for lst in lists}
        for lst in lists:
            self.list_def(lst, by_id)
        _no_circle_of_lists(lists, by_id)
        measures = doc.measures or []
        self.unique(measures, "measure")
        for m in measures:
            self.measure(m, by_id)
        if doc.appeals is not None:
            _require(doc.appeals, ["objection_window_days", "delay_days", "win_true", "win_false"], "'appeals'")

    def unique(self, items: list[Any], what: str) -> None:
        seen: dict[str, Node] = {}
        for item in items:
            if item.id is None:
                raise item.error(f"a {what} has no 'id'")
            if item.id in seen:
                raise item.error(f"the {what} '{item.id}' is defined twice (also at {seen[item.id].where()})", "id")
            seen[item.id] = item

    def score_kind(self, kind: str, s: ScoreKind, rule_ids: dict[str, Node]) -> None:
        where = f"score.{kind}"
        if kind == "business":
            for field in ("consent_required", "min_age_band"):
                if getattr(s, field) is not None:
                    raise s.error(f"'{field}' applies to citizens only", field)
        if scoring_ever(s):
            _require(s, ["start", "floor", "ceiling", "cadence", "grades", "reference"], f"'{where}'")
            self.scale(s, where)
            self.grades(s, where)
        for rule in s.rules or []:
            label = f"the rule '{rule.id}'"
            if rule.id is None:
                raise rule.error("a rule has no 'id'")
            if rule.id in rule_ids:
                raise rule.error(f"{label} is defined twice (also at {rule_ids[rule.id].where()})", "id")
            rule_ids[rule.id] = rule
            self.item_basics(rule, label)
            _require(rule, ["act", "points"], label)
            assert rule.act is not None and rule.points is not None
            self.act(rule, "act", rule.act, kind, label)
            if s.rewards_only and ever(rule.points, lambda v: v < 0):
                raise rule.error(f"{label} deducts points, but this score is rewards-only", "points")
        caps = s.caps or []
        cats: dict[str, Node] = {}
        for cap in caps:
            _require(cap, ["category", "points", "reference"], "a cap")
            assert cap.category is not None
            if cap.category not in self.cat.category_index:
                raise cap.error(
                    f"a cap names an unknown act category '{cap.category}'"
                    f"{did_you_mean(cap.category, self.cat.category_index)}",
                    "category",
                )
            if cap.category in cats:
                raise cap.error(f"the category '{cap.category}' is capped twice", "category")
            cats[cap.category] = cap
        if len(caps) > MAX_CAPPED_CATEGORIES:
            raise caps[MAX_CAPPED_CATEGORIES].error(
                f"at most {MAX_CAPPED_CATEGORIES} categories can be capped per region"
            )
        for ov in s.overrides or []:
            label = f"the override '{ov.id}'"
            if ov.id is None:
                raise ov.error("an override has no 'id'")
            if ov.id in rule_ids:
                raise ov.error(f"{label} uses an id already used at {rule_ids[ov.id].where()}", "id")
            rule_ids[ov.id] = ov
            self.item_basics(ov, label)
            _require(ov, ["act", "grade", "days"], label)
            assert ov.act is not None and ov.grade is not None
            self.act(ov, "act", ov.act, kind, label)
            self.grade_range(ov, "grade", [ov.grade], kind, label)

    def scale(self, s: ScoreKind, where: str) -> None:
        assert s.start and s.floor and s.ceiling
        for day in [dt.date.min, *sorted(change_dates([s.start, s.floor, s.ceiling]))]:
            lo, hi, st = s.floor.at(day), s.ceiling.at(day), s.start.at(day)
            if lo >= hi:
                raise s.error(f"'{where}' has a floor ({lo}) that is not below its ceiling ({hi})", "floor")
            if not lo <= st <= hi:
                raise s.error(f"'{where}' starts at {st}, outside its floor {lo} and ceiling {hi}", "start")

    def grades(self, s: ScoreKind, where: str) -> None:
        grades: list[Grade] = s.grades or []
        if not grades:
            raise s.error(f"'{where}' needs at least one grade", "grades")
        if len(grades) > MAX_GRADES:
            raise grades[MAX_GRADES].error(f"at most {MAX_GRADES} grades are possible")
        names: dict[str, Grade] = {}
        for g in grades:
            if g.name is None:
                raise g.error("a grade has no 'name'")
            if g.name in names:
                raise g.error(f"the grade '{g.name}' is defined twice", "name")
            names[g.name] = g
        for g in grades[:-1]:
            if g.min is None:
                raise g.error(f"the grade '{g.name}' has no 'min' (only the last, worst grade may leave it out)")
        days = [dt.date.min, *sorted(change_dates([[g.min, g.max] for g in grades]))]
        for day in days:
            for better, worse in zip(grades, grades[1:], strict=False):
                assert better.min is not None
                b_min = better.min.at(day)
                w_min = worse.min.at(day) if worse.min is not None else None
                w_max = worse.max.at(day) if worse.max is not None else None
                if w_min is not None and w_min >= b_min:
                    raise worse.error(
                        f"the grades '{better.name}' (from {b_min}) and '{worse.name}' (from {w_min}) "
                        "overlap; list grades from best to worst",
                        "min",
                    )
                if w_max is not None and w_max >= b_min:
                    raise worse.error(
                        f"the grades '{better.name}' (from {b_min}) and '{worse.name}' (up to {w_max}) overlap",
                        "max",
                    )
                if w_max is not None and w_max < b_min - 1:
                    raise worse.error(
                        f"there is a gap between the grades '{worse.name}' (up to {w_max}) "
                        f"and '{better.name}' (from {b_min})",
                        "max",
                    )
            for g in grades:
                if g.min is not None and g.max is not None and g.max.at(day) < g.min.at(day):
                    raise g.error(f"the grade '{g.name}' ends ({g.max.at(day)}) below its start ({g.min.at(day)})", "max")

    def list_def(self, lst: ListDef, by_id: dict[str | None, ListDef]) -> None:
        label = f"the list '{lst.id}'"
        self.item_basics(lst, label)
        _require(lst, ["kind", "subject", "authority", "entry"], label)
        assert lst.entry is not None and lst.subject is not None
        entry = lst.entry
        if not (entry.acts or entry.grades or entry.after):
            raise entry.error(f"{label} has no way in: give 'acts', 'grades' or 'after'")
        for a in entry.acts or []:
            self.act(entry, "acts", a, lst.subject, label)
        if entry.k is not None and ever(entry.k, lambda v: v > 1) and not ever(entry.window_days, lambda v: v > 0):
            raise entry.error(f"{label} needs 'window_days' when more than one record ('k') is needed", "k")
        if (entry.k is not None or entry.window_days is not None) and not entry.acts:
            raise entry.error(f"{label} counts records ('k', 'window_days') but names no 'acts'")
        if entry.grades:
            self.grade_range(entry, "grades", entry.grades, lst.subject, label)
        if entry.after is not None:
            after = entry.after
            _require(after, ["list", "days"], f"the 'after' entry of {label}")
            if after.list not in by_id:
                raise after.error(
                    f"{label} names an unknown list '{after.list}'{did_you_mean(str(after.list), [k for k in by_id if k])}",
                    "list",
                )
            if after.list == lst.id:
                raise after.error(f"{label} cannot be entered from itself", "list")
            if ever(after.days, lambda v: v < 1):
                raise after.error(
                    f"{label} is entered after 0 days on '{after.list}', which is the same day "
                    "as that list; give 'days' of at least 1 (or enter both lists by the same "
                    "acts)",
                    "days",
                )
            other = by_id[after.list]
            if other.subject != lst.subject:
                raise after.error(
                    f"{label} holds {PLURAL[lst.subject]} but the list '{after.list}' holds "
                    f"{PLURAL[str(other.subject)]}",
                    "list",
                )
        ex = lst.exit
        if ex is not None and ex.repair is True and self.doc.repair is None:
            raise ex.error(f"{label} uses the policy's 'repair' terms, but the policy has no 'repair' section", "repair")
        if ex is not None and ex.repair is not None and ex.repair is not True and ex.repair is not False:
            _require(ex.repair, ["min_days", "daily_chance"], f"the repair terms of {label}")
        if self.doc.repair is not None:
            _require(self.doc.repair, ["min_days", "daily_chance"], "'repair'")

    def measure(self, m: Measure, lists: dict[str | None, ListDef]) -> None:
        label = f"the measure '{m.id}'"
        self.item_basics(m, label)
        _require(m, ["service", "effect", "trigger", "reach", "authority"], label)
        assert m.service is not None and m.trigger is not None and m.reach is not None
        if m.service not in self.cat.service_index:
            raise m.error(
                f"{label} names an unknown service '{m.service}'{did_you_mean(m.service, self.cat.service_index)}",
                "service",
            )
        service = self.cat.service(m.service)
        if not m.reach:
            raise m.error(f"{label} reaches nobody; give 'reach'", "reach")
        if m.effect == "throttle" and list(m.reach) != ["subject"]:
            raise m.error(f"{label} throttles a connection, which reaches only its subject; "
                          "give 'reach: [subject]'", "reach")
        if "children" in m.reach and 0 not in service.ages:
            raise m.error(f"{label} reaches children, but children never ask for '{m.service}'", "reach")
        trig = m.trigger
        if not trig.lists and not trig.grades:
            raise trig.error(f"{label} has no trigger: give 'lists' or 'grades'")
        for name in trig.lists or []:
            if name not in lists:
                raise trig.error(
                    f"{label} names an unknown list '{name}'{did_you_mean(name, [k for k in lists if k])}",
                    "lists",
                )
            kind = lists[name].subject
            assert kind is not None
            if not any(_reaches(r, kind, service.kind, service.ages) for r in m.reach):
                raise trig.error(
                    f"{label} is set off by the list '{name}' of {PLURAL[kind]}, but its reach "
                    f"({', '.join(m.reach)}) never leads to a {service.kind} asking for '{m.service}'",
                    "lists",
                )
        if trig.grades:
            kind = trig.subject or service.kind
            self.grade_range(trig, "grades", trig.grades, kind, label)
            wrong = [r for r in m.reach if not _reaches(r, kind, service.kind, service.ages)]
            if wrong:
                raise m.error(
                    f"{label} is set off by {kind} grades, so it cannot reach '{wrong[0]}' "
                    f"for the {service.kind} service '{m.service}'",
                    "reach",
                )


def _reaches(reach: str, trigger_kind: str, service_kind: str, ages: list[int]) -> bool:
    """Whether a trigger on a subject of ``trigger_kind`` can decide this service via ``reach``."""
    if reach == "subject":
        return trigger_kind == service_kind
    if reach == "children":
        return trigger_kind == "citizen" and service_kind == "citizen" and 0 in ages
    if reach == "representative":
        return trigger_kind == "business" and service_kind == "citizen"
    return trigger_kind == "citizen" and service_kind == "business"


def check_policy(doc: PolicyDocument, catalogue: Catalogue) -> None:
    """Raise a :class:`UserError` for the first problem of a layered policy, if any."""
    Checker(doc, catalogue).run()


__all__ = ["UserError", "change_dates", "check_policy", "grade_names", "scoring_ever"]


def _no_circle_of_lists(lists: list[ListDef], by_id: dict[str | None, ListDef]) -> None:
    """Refuse lists that enter each other through ``after`` (a → b → a, or longer circles).

    Time on one list would lead onto the next and back again; with ``moves`` a subject
    would be passed round the circle for ever, and without it the lists would only hold
    each other's members. Neither is a rule any regulation states, so it is refused, naming
    the lists, at the ``after`` entry of the first list of the circle (in file order)."""
    def source(lst: ListDef) -> str | None:
        after = lst.entry.after if lst.entry is not None else None
        return after.list if after is not None else None

    for lst in lists:
        path = [lst.id]
        nxt = source(lst)
        while nxt is not None and nxt in by_id and nxt not in path:
            path.append(nxt)
            nxt = source(by_id[nxt])
        if nxt == lst.id and len(path) > 1:
            circle = " → ".join(f"'{name}'" for name in [*reversed(path), path[-1]])
            assert lst.entry is not None and lst.entry.after is not None
            names = ", ".join(f"'{n}'" for n in path[:-1]) + f" and '{path[-1]}'"
            raise lst.entry.after.error(
                f"the lists {names} enter each other through 'after' ({circle}), so a subject "
                "could go round them for ever; break the circle",
                "list",
            )
