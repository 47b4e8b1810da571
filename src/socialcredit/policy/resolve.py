"""The resolved view of a policy: what holds in one region on one date, with references.

``policy show`` prints it, ``policy diff`` compares two of them, and a run's manifest can
store it (with its digest) so that a reader knows exactly which rules produced the results.
Every item keeps its reference, whether it is verified, and the file and line it came from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from socialcredit.catalogue import KINDS, Catalogue, load_catalogue
from socialcredit.catalogue.yamlsource import did_you_mean
from socialcredit.errors import UserError
from socialcredit.policy.checks import change_dates
from socialcredit.policy.compiler import PolicyRef, as_policy, compile_policy, layered_for_region
from socialcredit.policy.dated import Dated
from socialcredit.policy.loading import POLICIES_DIR, baseline_of, default_extension, load_policy
from socialcredit.policy.schema import (
    Item,
    ListDef,
    Measure,
    PolicyDocument,
    RepairTerms,
    ScoreKind,
)


@dataclass(frozen=True)
class ResolvedItem:
    """One rule-like thing of a resolved policy, with its values as text."""

    section: str  # score, grades.citizen, rules.citizen, overrides.business, caps.citizen, lists, measures, appeals, repair
    id: str
    fields: dict[str, str]
    reference: str = ""
    verified: bool = True
    mandatory: bool = False
    origin: str = ""
    source: str = ""


@dataclass
class ResolvedPolicy:
    """A policy as it applies in one region (or anywhere) on one date (or at any date)."""

    name: str
    kind: str
    layers: list[str]
    region: str | None
    date: dt.date | None
    items: list[ResolvedItem] = field(default_factory=list)

    def sections(self) -> dict[str, list[ResolvedItem]]:
        """Items grouped by section, in order."""
        out: dict[str, list[ResolvedItem]] = {}
        for item in self.items:
            out.setdefault(item.section, []).append(item)
        return out

    def item(self, section: str, ident: str) -> ResolvedItem | None:
        """The item with this section and id, if present."""
        for it in self.items:
            if it.section == section and it.id == ident:
                return it
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for manifests and ``--json`` outputs)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "layers": list(self.layers),
            "region": self.region,
            "date": self.date.isoformat() if self.date else None,
            "items": [asdict(i) for i in self.items],
        }

    def digest(self) -> str:
        """A SHA-256 of the rules' content (sources left out, so moving files keeps it)."""
        content = [
            {k: v for k, v in asdict(i).items() if k != "source"} for i in self.items
        ]
        text = json.dumps([self.layers, self.region, content], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def short_path(path: str | None) -> str:
    """A path as shown to people: relative to the shipped policies or the working folder."""
    if not path:
        return ""
    p = Path(path)
    for root, prefix in ((POLICIES_DIR, ""), (Path.cwd(), "")):
        try:
            return prefix + p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return path


def _src(node: Any, fld: str | None = None) -> str:
    file, line = node.file_of(fld), node.line_of(fld)
    return f"{short_path(file)}:{line}" if line else short_path(file)


class _View:
    def __init__(self, date: dt.date | None, region: str | None) -> None:
        self.date = date
        self.region = region

    def v(self, value: Any, fmt: Any = str) -> str:
        if value is None:
            return ""
        if isinstance(value, Dated):
            return fmt(value.at(self.date)) if self.date else value.describe(fmt)
        return fmt(value)

    def keep(self, item: Item) -> bool:
        if self.region is not None and not item.applies_in(self.region):
            return False
        return self.date is None or item.in_force(self.date)

    def period(self, item: Item) -> dict[str, str]:
        out = {}
        if item.from_ is not None:
            out["from"] = item.from_.isoformat()
        if item.until is not None:
            out["until"] = item.until.isoformat()
        if item.regions:
            out["regions"] = ", ".join(item.regions)
        return out


def _yes(v: Any) -> str:
    return "yes" if v else "no"


def _signed(v: Any) -> str:
    return f"{v:+d}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _entry_text(view: _View, lst: ListDef) -> str:
    e = lst.entry
    if e is None:
        return ""
    parts = []
    if e.acts:
        k = view.v(e.k) if e.k is not None else "1"
        if k != "1":
            parts.append(f"{k} records of {', '.join(e.acts)} within {view.v(e.window_days)} days")
        else:
            parts.append(f"a record of {', '.join(e.acts)}")
    if e.grades:
        parts.append(f"grade {'-'.join(dict.fromkeys([e.grades[0], e.grades[-1]]))}")
    if e.after is not None:
        moves = " (moves)" if e.after.moves is not None and view.v(e.after.moves, _yes) == "yes" else ""
        parts.append(f"{view.v(e.after.days)} days on {e.after.list}{moves}")
    return "; or ".join(parts)


def _exit_text(view: _View, doc: PolicyDocument, lst: ListDef) -> str:
    ex = lst.exit
    if ex is None:
        return ""
    parts = []
    if ex.obligation_met is not None and view.v(ex.obligation_met, _yes) != "no":
        parts.append(f"obligation met ({view.v(ex.obligation_met, _yes)})")
    terms: RepairTerms | None = doc.repair if ex.repair is True else (ex.repair if isinstance(ex.repair, RepairTerms) else None)
    if terms is not None:
        parts.append(f"repair after {view.v(terms.min_days)} days at {view.v(terms.daily_chance)} a day")
    return "; ".join(parts)


def _trigger_text(m: Measure) -> str:
    t = m.trigger
    if t is None:
        return ""
    parts = []
    if t.lists:
        parts.append("lists " + ", ".join(t.lists))
    if t.grades:
        who = f" ({t.subject})" if t.subject else ""
        parts.append("grades " + ", ".join(t.grades) + who)
    return "; or ".join(parts)


def _item(section: str, ident: str, node: Item, fields: dict[str, str]) -> ResolvedItem:
    return ResolvedItem(
        section=section,
        id=ident,
        fields=fields,
        reference=node.reference or "",
        verified=not node.unverified(),
        mandatory=bool(node.mandatory),
        origin=node.origin,
        source=_src(node),
    )


def _score_items(view: _View, kind: str, s: ScoreKind) -> list[ResolvedItem]:
    out: list[ResolvedItem] = []
    fields = {
        "enabled": view.v(s.enabled, _yes) if s.enabled is not None else "yes",
        "start": view.v(s.start),
        "floor": view.v(s.floor),
        "ceiling": view.v(s.ceiling),
        "cadence": view.v(s.cadence),
    }
    if kind == "citizen":
        fields["consent_required"] = view.v(s.consent_required, _yes) if s.consent_required else "no"
        fields["min_age_band"] = view.v(s.min_age_band) if s.min_age_band else "1"
    if s.rewards_only:
        fields["rewards_only"] = "yes"
    ref = s.reference or ""
    where = _src(s, "start") if s.start is not None else _src(s)
    out.append(ResolvedItem("score", kind, fields, ref, "[U]" not in ref, False, "", where))
    for g in s.grades or []:
        gf = {"min": view.v(g.min) if g.min is not None else "(floor)", "max": view.v(g.max)}
        out.append(ResolvedItem(f"grades.{kind}", str(g.name), gf, g.note or "", True, False, "", _src(g)))
    for r in s.rules or []:
        if not view.keep(r):
            continue
        rf = {
            "act": str(r.act),
            "points": view.v(r.points, _signed),
            "validity_years": view.v(r.validity_years) if r.validity_years else "0",
            "escalation_pct": view.v(r.escalation_pct) if r.escalation_pct else "0",
            **view.period(r),
        }
        out.append(_item(f"rules.{kind}", str(r.id), r, rf))
    for o in s.overrides or []:
        if not view.keep(o):
            continue
        of = {"act": str(o.act), "grade": str(o.grade), "days": view.v(o.days), **view.period(o)}
        out.append(_item(f"overrides.{kind}", str(o.id), o, of))
    for c in s.caps or []:
        cref = c.reference or ""
        out.append(
            ResolvedItem(f"caps.{kind}", str(c.category), {"points": view.v(c.points)}, cref,
                         "[U]" not in cref, False, "", _src(c))
        )
    return out


def resolved_items(doc: PolicyDocument, region: str | None, date: dt.date | None) -> list[ResolvedItem]:
    """The items of a layered policy, as they apply in ``region`` on ``date``."""
    view = _View(date, region)
    items: list[ResolvedItem] = []
    if doc.score is not None:
        for kind in KINDS:
            s = getattr(doc.score, kind)
            if s is not None:
                items.extend(_score_items(view, kind, s))
    for lst in doc.lists or []:
        if not view.keep(lst):
            continue
        lf = {
            "kind": str(lst.kind),
            "subject": str(lst.subject),
            "authority": str(lst.authority),
            "entry": _entry_text(view, lst),
            "term_days": view.v(lst.term_days) if lst.term_days else "0",
            "extend_days": view.v(lst.extend_days) if lst.extend_days else "0",
            "exit": _exit_text(view, doc, lst),
            **view.period(lst),
        }
        items.append(_item("lists", str(lst.id), lst, lf))
    for m in doc.measures or []:
        if not view.keep(m):
            continue
        mf = {
            "service": str(m.service),
            "effect": str(m.effect),
            "trigger": _trigger_text(m),
            "reach": ", ".join(m.reach or []),
            "authority": str(m.authority),
            **view.period(m),
        }
        items.append(_item("measures", str(m.id), m, mf))
    if doc.appeals is not None:
        ap = doc.appeals
        af = {
            "objection_window_days": view.v(ap.objection_window_days),
            "delay_days": view.v(ap.delay_days),
            "win_true": view.v(ap.win_true),
            "win_false": view.v(ap.win_false),
        }
        ref = ap.reference or ""
        items.append(ResolvedItem("appeals", "appeals", af, ref, "[U]" not in ref, False, "", _src(ap)))
    if doc.repair is not None:
        rp = doc.repair
        rf = {"min_days": view.v(rp.min_days), "daily_chance": view.v(rp.daily_chance)}
        ref = rp.reference or ""
        items.append(ResolvedItem("repair", "repair", rf, ref, "[U]" not in ref, False, "", _src(rp)))
    return items


def chain(doc: PolicyDocument) -> list[PolicyDocument]:
    """The layered documents of a policy, baseline first."""
    out = []
    node: PolicyDocument | None = doc
    while node is not None:
        out.append(node)
        node = node.base
    return out[::-1]


def _policy_path(doc: PolicyDocument) -> Path | None:
    if doc.file is None:
        return None
    p = Path(doc.file)
    return p.parent if p.name == "policy.yaml" else p


def region_policy(
    policy: PolicyRef, region: str | None = None, catalogue: Catalogue | None = None
) -> tuple[PolicyDocument, str | None]:
    """The policy as layered for a region: a baseline gains the region's shipped extension.

    An extension (or a reform of one) keeps its own region unless another is named.
    Returns the layered document and the region it applies to (None: any region).
    """
    cat = catalogue or load_catalogue()
    doc = as_policy(policy, cat)
    layers = chain(doc)
    base = layers[0]
    ext = next((d for d in layers if d.kind == "extension"), None)
    reforms = [d for d in layers if d.kind == "reform"]
    if region is not None and region not in cat.region_index:
        raise UserError(f"unknown region '{region}'{did_you_mean(region, cat.region_index)}")
    if ext is None and region is not None:
        base_path = _policy_path(base)
        if base_path is not None:
            name = default_extension(region, str(base_path))
            if name is not None:
                ext = load_policy(name, cat)
    if ext is not None and region is None:
        region = ext.region
    if ext is None and not reforms:
        return base, region
    return layered_for_region(baseline_of(doc), ext, reforms, cat), region


def resolve(
    policy: PolicyRef,
    region: str | None = None,
    date: dt.date | None = None,
    catalogue: Catalogue | None = None,
) -> ResolvedPolicy:
    """What a policy says in ``region`` on ``date`` (either may be None: everywhere, always).

    A baseline shown for a region includes that region's shipped extension, if any.
    """
    doc, region = region_policy(policy, region, catalogue)
    return ResolvedPolicy(
        name=str(doc.name),
        kind=str(doc.kind),
        layers=list(doc.layers),
        region=region,
        date=date,
        items=resolved_items(doc, region, date),
    )


@dataclass(frozen=True)
class Difference:
    """One item that differs between two resolved policies."""

    section: str
    id: str
    change: str  # added | removed | changed
    fields: dict[str, tuple[str, str]]  # key -> (before, after); every key for added/removed


def diff(a: ResolvedPolicy, b: ResolvedPolicy) -> list[Difference]:
    """Items added, removed or changed from ``a`` to ``b`` (references count as values)."""
    def table(p: ResolvedPolicy) -> dict[tuple[str, str], dict[str, str]]:
        return {(i.section, i.id): {**i.fields, "reference": i.reference} for i in p.items}

    ta, tb = table(a), table(b)
    out: list[Difference] = []
    for key in list(ta) + [k for k in tb if k not in ta]:
        before, after = ta.get(key), tb.get(key)
        if before is None and after is not None:
            out.append(Difference(key[0], key[1], "added", {k: ("", v) for k, v in after.items()}))
        elif after is None and before is not None:
            out.append(Difference(key[0], key[1], "removed", {k: (v, "") for k, v in before.items()}))
        elif before is not None and after is not None and before != after:
            changed = {
                k: (before.get(k, ""), after.get(k, ""))
                for k in dict.fromkeys([*before, *after])
                if before.get(k, "") != after.get(k, "")
            }
            out.append(Difference(key[0], key[1], "changed", changed))
    return out


def validate_policy(policy: str | Path, catalogue: Catalogue | None = None) -> PolicyDocument:
    """Load a policy and compile it over its whole history, raising the first problem.

    This is ``policy check``: besides the file's own mistakes it catches what only
    compilation sees (too many lists across layers, caps per region).
    """
    cat = catalogue or load_catalogue()
    doc = load_policy(policy, cat)
    layers = chain(doc)
    ext = next((d for d in layers if d.kind == "extension"), None)
    reforms: Sequence[PolicyDocument] = [d for d in layers if d.kind == "reform"]
    dates = change_dates(doc)
    first = min(dates | {dt.date(2014, 1, 1)})
    last = max(dates | {dt.date(2025, 12, 31)})
    region = ext.region if ext is not None and ext.region else "control"
    compile_policy(baseline_of(doc), [(region, ext)], reforms, first, last, cat)
    return doc


def resolved_summary(
    baseline: PolicyRef,
    regions: Sequence[tuple[str, PolicyRef | None]],
    reforms: Sequence[PolicyRef] = (),
    catalogue: Catalogue | None = None,
) -> dict[str, Any]:
    """The resolved policy of a run, for its manifest: every rule with its reference.

    Regions sharing the same layers share one resolved policy; ``policies`` holds each
    distinct one by its digest, ``regions`` says which one applies where, and ``hash``
    covers them all (the run's policy hash).
    """
    cat = catalogue or load_catalogue()
    base = as_policy(baseline, cat)
    reform_docs = [as_policy(r, cat) for r in reforms]
    policies: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    memo: dict[tuple[int, str], ResolvedPolicy] = {}
    for region, ext_ref in regions:
        ext = as_policy(ext_ref, cat) if ext_ref is not None else None
        key = (id(ext), region)
        if key not in memo:
            doc = layered_for_region(base, ext, reform_docs, cat)
            memo[key] = ResolvedPolicy(
                name=str(doc.name), kind=str(doc.kind), layers=list(doc.layers), region=None,
                date=None, items=resolved_items(doc, region, None),
            )
        resolved = memo[key]
        digest = resolved.digest()
        policies.setdefault(digest, resolved.to_dict())
        rows.append({"region": region, "layers": resolved.layers, "hash": digest})
    total = hashlib.sha256(json.dumps([r["hash"] for r in rows]).encode()).hexdigest()
    return {
        "baseline": str(base.name),
        "reforms": [str(r.name) for r in reform_docs],
        "hash": total,
        "regions": rows,
        "policies": policies,
    }
