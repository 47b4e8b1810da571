"""The rights audit of a policy (``socialcredit policy audit``).

For each rule, list and measure of a layered policy, the human rights it touches and why,
with a severity. The audit reads the policy and the catalogue only — it needs no run — and is
deterministic. What it checks (rights as listed in FACTS.md):

========================================================  ===========  ============
finding                                                   right        severity
========================================================  ===========  ============
points, a forced grade or a list entry for an act of      ICCPR 19     high
expression (catalogue category ``speech``; ``religion``,  (18, 21, 22)
``assembly``, ``association`` likewise)
an act recorded through surveillance of private data      ICCPR 17     medium (low
(search history, mobile location, private messages)                    for rewards)
a travel ban (a measure that denies flights or trains)    ICCPR 12     high when set
                                                                       off by a grade,
                                                                       else medium
a sanction with no objection window, or with objections   ICCPR 14     high
that can never succeed
a list with no term and no way off it                     ICCPR 14     medium
a sanction that reaches a legal representative or a       ICCPR 14     low
business for another subject's status
a measure that reaches children for a parent's status     CRC 2(2)     high
an item that applies only in some regions, a regional     ICCPR 26     medium (low
extension, or an act whose false records fall unequally                for a whole
by group (a channel that misidentifies some bands more)                extension)
========================================================  ===========  ============

Rule names follow the compiled rule names of a run's ledger (``unified.score.spread_rumours``,
``national.list.train_ban.acts``); measures are ``POLICY.measure.ID`` and lists
``POLICY.list.ID``, where POLICY is the layer that last wrote the item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from socialcredit.catalogue import Catalogue
    from socialcredit.policy.dated import Dated
    from socialcredit.policy.schema import Item, ListDef, Measure, PolicyDocument

SEVERITIES = ("high", "medium", "low")
#: Within a severity, findings are listed in this order of rights (then by rule).
RIGHTS_ORDER = ("ICCPR 19", "ICCPR 18", "ICCPR 21", "ICCPR 22", "CRC 2(2)", "ICCPR 12",
                "ICCPR 14", "ICCPR 17", "ICCPR 26")

#: Act categories that are the exercise of a right, and the right.
CATEGORY_RIGHTS = {
    "speech": ("ICCPR 19", "an act of expression"),
    "religion": ("ICCPR 18", "an act of thought, conscience or religion"),
    "assembly": ("ICCPR 21", "an act of peaceful assembly"),
    "association": ("ICCPR 22", "an act of association"),
}
#: Channels that watch private life rather than public conduct.
PRIVATE_CHANNELS = {"search": "search history", "location": "mobile location"}
PRIVATE_WORDS = ("message", "chat", "private")
#: Services whose denial restricts movement.
TRAVEL_SERVICES = {"flight", "train", "soft_sleeper"}


@dataclass(frozen=True)
class Finding:
    """One right touched by one rule, list or measure (DESIGN 8: rule, rights, severity, why)."""

    rule: str
    rights: tuple[str, ...]
    severity: str
    why: str
    source: str = ""  # file and line, for the table (not part of the JSON contract)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of DESIGN 8."""
        return {"rule": self.rule, "rights": list(self.rights), "severity": self.severity,
                "why": self.why}


def _values(d: Dated[Any] | None) -> list[Any]:
    return [] if d is None else list(d.values())


def _where(item: Any) -> str:
    """``file:line`` of an item, the file relative to the shipped policies where it is one."""
    from socialcredit.policy.resolve import short_path

    try:
        file, line = item.file_of(), item.line_of()
    except Exception:  # noqa: BLE001 - a location is a courtesy
        return ""
    if not file:
        return ""
    return f"{short_path(file)}:{line}" if line else short_path(file)


def _unequal(modifiers: dict[str, list[float]]) -> str:
    """``children (2x) and people aged 60+ (1.6x)`` from a channel's misidentification modifiers."""
    from socialcredit.population import AGE_BANDS, EDUCATION_BANDS, INCOME_BANDS

    names = {"age": AGE_BANDS, "income": INCOME_BANDS, "education": EDUCATION_BANDS,
             "urban": ("rural", "urban")}
    parts = []
    for axis, values in sorted(modifiers.items()):
        labels = names.get(axis, tuple(str(i) for i in range(len(values))))
        for label, v in zip(labels, values, strict=False):
            if v > 1.0:
                who = {"child": "children"}.get(label, f"{axis} band {label}"
                                               if axis != "age" else f"people aged {label}")
                parts.append(f"{who} ({v:g}x)")
    return " and ".join(parts) or "some groups"


def _is_private(channel: Any) -> str | None:
    if channel.id in PRIVATE_CHANNELS:
        return PRIVATE_CHANNELS[channel.id]
    text = f"{channel.id} {channel.name}".lower()
    return channel.name if any(w in text for w in PRIVATE_WORDS) else None


class _Auditor:
    def __init__(self, doc: PolicyDocument, cat: Catalogue):
        self.doc = doc
        self.cat = cat
        self.out: list[Finding] = []

    def add(self, rule: str, rights: Iterable[str], severity: str, why: str, item: Any) -> None:
        self.out.append(Finding(rule, tuple(rights), severity, why, _where(item)))

    # --- acts: what a rule penalises or rewards, and how the system learns of it ----------

    def act_findings(self, rule: str, item: Item, act_id: str, what: str,
                     penalises: bool) -> None:
        cat = self.cat
        if act_id not in cat.act_index:
            return
        act = cat.act(act_id)
        right = CATEGORY_RIGHTS.get(act.category)
        if right is not None and penalises:
            self.add(rule, [right[0]], "high",
                     f"{what} {act_id}, {right[1]} (category {act.category})", item)
        for ch_id in act.channels:
            ch = cat.channel(ch_id)
            private = _is_private(ch)
            if private:
                self.add(rule, ["ICCPR 17"], "medium" if penalises else "low",
                         f"records of {act_id} can come from {private} ({ch_id}), "
                         "surveillance of private life", item)
            if penalises and ch.misid_per_year > 0 and act_id in ch.false_acts \
                    and ch.misid_modifiers:
                self.add(rule, ["ICCPR 26"], "medium",
                         f"{ch.name} ({ch_id}) misidentify {_unequal(ch.misid_modifiers)} more "
                         f"often than others, so false records of {act_id} fall unequally",
                         item)

    def regions(self, rule: str, item: Item) -> None:
        if item.regions:
            self.add(rule, ["ICCPR 26"], "medium",
                     f"applies only in {', '.join(item.regions)}: the same act is treated "
                     "differently by region", item)

    # --- sections ---------------------------------------------------------------------------

    def score(self) -> None:
        from socialcredit.catalogue import KINDS
        from socialcredit.policy.compiler import rule_source

        if self.doc.score is None:
            return
        for kind in KINDS:
            s = getattr(self.doc.score, kind)
            if s is None:
                continue
            for r in s.rules or []:
                if r.act is None:
                    continue
                name = rule_source(r, "score")[0]
                pts = _values(r.points)
                neg = [p for p in pts if p < 0]
                what = f"deducts {-min(neg)} points for each record of" if neg else \
                    "rewards records of"
                if neg and _values(r.escalation_pct) and max(_values(r.escalation_pct)) > 0:
                    what = (f"deducts {-min(neg)} points, {max(_values(r.escalation_pct))} % "
                            "more for each earlier offence in the year, for each record of")
                self.act_findings(name, r, r.act, what, bool(neg))
                self.regions(name, r)
            for ov in s.overrides or []:
                if ov.act is None:
                    continue
                name = rule_source(ov, "override")[0]
                days = max(_values(ov.days) or [0])
                self.act_findings(name, ov, ov.act,
                                  f"forces grade {ov.grade} for {days} days after a record of",
                                  True)
                self.regions(name, ov)

    def lists(self) -> None:
        from socialcredit.policy.compiler import rule_source

        for lst in self.doc.lists or []:
            base = f"{lst.origin}.list.{lst.id}"
            entry = lst.entry
            black = lst.kind != "red"
            if entry is not None and entry.acts:
                name = rule_source(lst, "list", ".acts")[0]
                for act in entry.acts:
                    verb = "puts on the blacklist" if black else "puts on the redlist"
                    self.act_findings(name, lst, act,
                                      f"{verb} {lst.id} ({lst.name or lst.id}) anyone with a "
                                      "record of", black)
            if black and self._no_exit(lst):
                self.add(base, ["ICCPR 14"], "medium",
                         f"the blacklist {lst.id} has no term and no way off it (no "
                         "obligation to meet, no credit repair)", lst)
            self.regions(base, lst)

    def _no_exit(self, lst: ListDef) -> bool:
        if any(v > 0 for v in _values(lst.term_days)):
            return False
        ex = lst.exit
        if ex is None:
            return True
        if any(_values(ex.obligation_met)):
            return False
        if ex.repair is not None and ex.repair is not False:
            return False
        # a grade entry ends when the grade improves (the kernel's grade exit)
        return not (lst.entry is not None and lst.entry.grades)

    def measures(self) -> None:
        appeals = self.doc.appeals
        windows = _values(appeals.objection_window_days) if appeals is not None else []
        wins = _values(appeals.win_false) if appeals is not None else []
        no_window = not windows or min(windows) == 0
        never_win = bool(wins) and max(wins) == 0.0
        for m in self.doc.measures or []:
            name = f"{m.origin}.measure.{m.id}"
            deny = m.effect == "deny"
            trig = self._trigger_text(m)
            reach = set(m.reach or [])
            if deny and m.service in TRAVEL_SERVICES:
                by_grade = bool(m.trigger and m.trigger.grades)
                self.add(name, ["ICCPR 12"], "high" if by_grade else "medium",
                         f"bans {m.service} travel for {trig}", m)
            throttle = m.effect == "throttle"
            verb = "throttles" if throttle else "denies"
            if throttle:
                self.add(name, ["ICCPR 19"], "medium",
                         f"throttles the {m.service} connection for {trig}, for as long as it "
                         "holds: it slows the subject's access to information", m)
            if (deny or throttle) and (no_window or never_win):
                if no_window:
                    detail = "no objection window" + (" at times" if windows and max(windows) else "")
                    why = f"{verb} {m.service} for {trig} with {detail}: records behind it cannot be contested"
                else:
                    why = f"{verb} {m.service} for {trig}, and objections to false records never succeed"
                self.add(name, ["ICCPR 14"], "high", why, m)
            if "children" in reach:
                self.add(name, ["CRC 2(2)"], "high",
                         f"{'denies' if deny else 'decides'} {m.service} to children for the "
                         f"status of an adult of their household ({trig})", m)
            if deny and reach & {"representative", "represented_business"}:
                who = ("the legal representative of a business" if "representative" in reach
                       else "the businesses of a representative")
                self.add(name, ["ICCPR 14"], "low",
                         f"denies {m.service} to {who} for another subject's status ({trig}), "
                         "without a hearing of its own", m)
            self.regions(name, m)

    @staticmethod
    def _trigger_text(m: Measure) -> str:
        t = m.trigger
        parts = []
        if t is not None and t.lists:
            parts.append("being on " + " or ".join(t.lists))
        if t is not None and t.grades:
            parts.append("grade " + " or ".join(t.grades))
        return " or ".join(parts) or "its trigger"

    def extensions(self) -> None:
        from socialcredit.policy.layering import iter_items
        from socialcredit.policy.resolve import chain

        for layer in chain(self.doc):
            if layer.kind != "extension" or not layer.region:
                continue
            own = [i for i in iter_items(self.doc) if i.origin == layer.name]
            if not own:
                continue
            self.add(str(layer.name), ["ICCPR 26"], "low",
                     f"the extension's {len(own)} rules, lists and measures apply only in "
                     f"region {layer.region}: residents elsewhere are scored and sanctioned "
                     "differently for the same acts", layer)

    def run(self) -> list[Finding]:
        self.score()
        self.lists()
        self.measures()
        self.extensions()
        seen: set[tuple[str, tuple[str, ...], str]] = set()
        unique = []
        for f in self.out:
            key = (f.rule, f.rights, f.why)
            if key not in seen:
                seen.add(key)
                unique.append(f)
        order = {s: i for i, s in enumerate(SEVERITIES)}
        rights = {r: i for i, r in enumerate(RIGHTS_ORDER)}
        return sorted(unique, key=lambda f: (order[f.severity],
                                             min(rights.get(r, 99) for r in f.rights),
                                             f.rule, f.rights))


def audit_policy(policy: str | Path | PolicyDocument,
                 catalogue: Catalogue | None = None) -> list[Finding]:
    """The rights audit of a policy (a shipped policy's name, a path or a loaded document)."""
    from socialcredit.catalogue import load_catalogue
    from socialcredit.policy.compiler import as_policy

    cat = catalogue or load_catalogue()
    return _Auditor(as_policy(policy, cat), cat).run()


def findings_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """The list of findings in the JSON form of DESIGN 8."""
    return [f.to_dict() for f in findings]
