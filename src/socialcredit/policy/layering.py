"""Layering: a baseline, then a regional extension, then reforms (DESIGN 2.6).

Layers are merged key by key. Items with an id (points rules, overrides, lists, measures;
caps by category) are merged by id: an entry whose id already exists changes only the keys
it gives, a new id adds an item, and ``remove: true`` deletes one. Other keys (a score's
start, a list of grades) are replaced whole. A regional extension may not change or remove
an item marked ``mandatory``; reforms may (they are what-ifs, not regulations).

The files of a policy folder are combined first, with stricter rules: two files may not
define the same item or set the same key.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from socialcredit.catalogue.yamlsource import Node
from socialcredit.policy.schema import HEADER_KEYS, Item, PolicyDocument

N = TypeVar("N", bound=Node)

_WHAT = {"rules": "rule", "overrides": "override", "caps": "cap", "lists": "list", "measures": "measure"}


def stamp(doc: PolicyDocument, policy: str) -> None:
    """Give every item of a freshly read document its origin (the policy's name)."""
    for item in iter_items(doc):
        item.set_origin(
            policy, ((policy, item.where()),), ((policy, frozenset(item.model_fields_set), item.reference),)
        )


def iter_items(node: BaseModel) -> list[Item]:
    """Every :class:`Item` within a node, depth first."""
    out: list[Item] = []
    for name in type(node).model_fields:
        value = getattr(node, name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, Item):
                out.append(v)
            if isinstance(v, BaseModel):
                out.extend(iter_items(v))
    return out


def _keyed(node: Node, field: str) -> str | None:
    keyed: dict[str, str] = getattr(type(node), "KEYED", {})
    return keyed.get(field)


def _relocate(out: Node, base: Node, patch: Node, fields: set[str]) -> None:
    lines = base.key_lines
    files = base.key_files
    for field in fields:
        key = type(patch).key_of(field)
        line = patch.key_lines.get(key)
        if line is not None and patch.file is not None:
            lines[key] = line
            files[key] = patch.file_of(field) or patch.file
    out.set_location(base.file, base.line, lines, files)
    out.touch(patch.file, patch.line)


# --- layers ---------------------------------------------------------------------------------


class _Layer:
    def __init__(self, name: str, kind: str, base_name: str) -> None:
        self.name = name
        self.kind = kind
        self.base_name = base_name


def _merge_node(base: N, patch: N, layer: _Layer) -> N:
    updates: dict[str, Any] = {}
    changed = set(patch.model_fields_set) - {"id", "remove"}
    for field in changed:
        new, old = getattr(patch, field), getattr(base, field)
        key = _keyed(base, field)
        if key is not None and old is not None and new is not None:
            updates[field] = _merge_items(old, new, key, _WHAT.get(field, field), layer)
        elif isinstance(new, Node) and isinstance(old, Node):
            updates[field] = _merge_node(old, new, layer)
        else:
            updates[field] = new
    out = base.model_copy(update=updates)
    _relocate(out, base, patch, changed)
    return out


def _merge_items(old: list[Any], new: list[Any], key: str, what: str, layer: _Layer) -> list[Any]:
    out: list[Any] = list(old)
    index = {getattr(item, key): i for i, item in enumerate(out)}
    for patch in new:
        ident = getattr(patch, key)
        if ident in index:
            pos = index[ident]
            base = out[pos]
            if layer.kind == "extension" and isinstance(base, Item) and base.mandatory:
                raise patch.error(
                    f"the {what} '{ident}' is mandatory in {base.where()} and a regional "
                    f"extension cannot {'remove' if patch.remove else 'change'} it"
                )
            if isinstance(patch, Item) and patch.remove:
                out[pos] = None
                continue
            merged = _merge_node(base, patch, layer)
            if isinstance(merged, Item) and isinstance(base, Item) and isinstance(patch, Item):
                merged.set_origin(
                    layer.name,
                    base.trail + ((layer.name, patch.where()),),
                    base._history + ((layer.name, frozenset(patch.model_fields_set), patch.reference),),
                )
            out[pos] = merged
        else:
            if isinstance(patch, Item) and patch.remove:
                raise patch.error(
                    f"the {what} '{ident}' cannot be removed: {layer.base_name} has no such {what}"
                )
            index[ident] = len(out)
            out.append(patch)
    return [item for item in out if item is not None]


def layer(base: PolicyDocument, patch: PolicyDocument) -> PolicyDocument:
    """``patch`` (an extension or a reform) applied on top of ``base`` (already layered)."""
    kind = patch.kind or "extension"
    name = patch.name or "?"
    merged = _merge_node(base, patch, _Layer(name, kind, base.name or "the base policy"))
    # The result keeps the base's identity (its name is the chain's) but records the layers.
    merged = merged.model_copy(
        update={"name": patch.name, "kind": patch.kind, "extends": patch.extends, "region": patch.region or base.region}
    )
    merged._layers = base.layers + (name,)
    merged._base = base
    merged._own = patch.own
    merged.set_location(patch.file, patch.line, patch.key_lines, patch.key_files)
    return merged


# --- the files of one policy folder ------------------------------------------------------------


def combine(main: PolicyDocument, part: PolicyDocument) -> PolicyDocument:
    """One folder's part file added to its main file; any clash is an error."""
    for key in HEADER_KEYS:
        if key in part.model_fields_set:
            raise part.error(
                f"'{key}' belongs in the folder's policy.yaml, not in a part file", key
            )
    # A part's description describes the part; the policy's own is in policy.yaml.
    return _combine(main, part, ignore={"description"})


def _combine(a: N, b: N, ignore: frozenset[str] | set[str] = frozenset()) -> N:
    updates: dict[str, Any] = {}
    fields = set(b.model_fields_set) - set(ignore)
    for field in fields:
        new, old = getattr(b, field), getattr(a, field)
        if old is None or field not in a.model_fields_set:
            updates[field] = new
            continue
        key = _keyed(a, field)
        if key is not None:
            seen = {getattr(item, key): item for item in old}
            for item in new:
                ident = getattr(item, key)
                if ident in seen:
                    raise item.error(
                        f"the {_WHAT.get(field, field)} '{ident}' is already defined in "
                        f"{seen[ident].where()}"
                    )
            updates[field] = list(old) + list(new)
        elif isinstance(new, Node) and isinstance(old, Node) and not isinstance(new, Item):
            updates[field] = _combine(old, new)
        else:
            raise b.error(f"'{type(b).key_of(field)}' is already set in {a.where(field)}", field)
    out = a.model_copy(update=updates)
    _relocate(out, a, b, fields)
    return out


def check_unique_ids(node: Node) -> None:
    """Within one document, no two items of a section may share an id (or caps a category)."""
    for field in type(node).model_fields:
        value = getattr(node, field)
        key = _keyed(node, field)
        if key is not None and value:
            seen: dict[Any, Node] = {}
            for item in value:
                ident = getattr(item, key)
                if ident is not None and ident in seen:
                    raise item.error(
                        f"the {_WHAT.get(field, field)} '{ident}' is defined twice "
                        f"(also at line {seen[ident].line})",
                        key,
                    )
                seen[ident] = item
        elif isinstance(value, Node):
            check_unique_ids(value)


def check_layer_header(doc: PolicyDocument) -> None:
    """The header keys a document needs for its kind."""
    if doc.name is None:
        raise doc.error("the policy has no 'name'")
    if doc.kind is None:
        raise doc.error("the policy has no 'kind' (baseline, extension or reform)")
    if doc.kind == "baseline":
        if doc.extends is not None:
            raise doc.error("a baseline extends nothing; remove 'extends' or make it an extension", "extends")
        if doc.region is not None:
            raise doc.error("a baseline applies everywhere; remove 'region' or make it an extension", "region")
    elif doc.kind == "extension":
        if doc.extends is None:
            raise doc.error("an extension needs 'extends' (the policy it adds to)")
        if doc.region is None:
            raise doc.error("an extension needs 'region' (the region it is written for)")
    else:
        if doc.extends is None:
            raise doc.error("a reform needs 'extends' (the policy it changes)")
        if doc.region is not None:
            raise doc.error("a reform applies wherever its base applies; remove 'region'", "region")
