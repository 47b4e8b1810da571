"""Finding, reading and layering policy files.

A policy is named either by a shipped policy's name (``national``, ``rongcheng``,
``list_term_one_year`` or ``reforms/list_term_one_year``) or by a path. A policy is one YAML
file, or a folder whose ``policy.yaml`` holds the header (name, kind, extends, region) and
whose other YAML files, at any depth, hold parts of the sections — so the layout can mirror
the domain (``national/courts/judgment_debtors.yaml``).

:func:`load_policy` returns the policy layered on everything it extends and checked; the
result is cached by file contents' timestamps, so repeated loads are cheap.
"""

from __future__ import annotations

from pathlib import Path

from socialcredit.catalogue import Catalogue, load_catalogue
from socialcredit.catalogue.yamlsource import did_you_mean, read_file, validate
from socialcredit.errors import UserError
from socialcredit.policy.checks import check_policy
from socialcredit.policy.layering import check_layer_header, check_unique_ids, combine, layer, stamp
from socialcredit.policy.schema import PolicyDocument

#: The folder of shipped policies.
POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"
MAIN_FILE = "policy.yaml"


def shipped_policies() -> dict[str, Path]:
    """Shipped policies by name: relative path without ``.yaml``, and the bare stem if unique."""
    found: dict[str, Path] = {}
    if not POLICIES_DIR.is_dir():
        return found
    folders = sorted(p.parent for p in POLICIES_DIR.rglob(MAIN_FILE))
    for folder in folders:
        found[folder.relative_to(POLICIES_DIR).as_posix()] = folder
    for path in sorted(POLICIES_DIR.rglob("*.yaml")):
        if any(folder in path.parents for folder in folders):
            continue
        found[path.relative_to(POLICIES_DIR).with_suffix("").as_posix()] = path
    stems: dict[str, list[str]] = {}
    for name in found:
        stems.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    for stem, names in stems.items():
        if len(names) == 1 and stem not in found:
            found[stem] = found[names[0]]
    return found


def find_policy(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """The file or folder a policy name or path refers to."""
    text = str(name_or_path)
    shipped = shipped_policies()
    if text in shipped:
        return shipped[text]
    candidates = [Path(text)]
    if relative_to is not None and not Path(text).is_absolute():
        candidates.insert(0, relative_to / text)
    for c in candidates:
        for p in (c, c.with_suffix(".yaml")) if c.suffix == "" else (c,):
            if p.exists():
                return p
    if "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        raise UserError("the file does not exist", path=text)
    hint = did_you_mean(text, shipped)
    raise UserError(f"no shipped policy and no file is named '{text}'{hint}")


def _signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _part_owner(path: Path) -> Path | None:
    """The policy folder a part file belongs to, if it is one."""
    if path.name == MAIN_FILE:
        return path.parent
    for parent in path.parents:
        if (parent / MAIN_FILE).is_file():
            return parent
    return None


def read_document(path: Path) -> PolicyDocument:
    """One policy file or folder as a document (not layered, not checked)."""
    if path.is_dir():
        main_path = path / MAIN_FILE
        if not main_path.is_file():
            raise UserError(f"a policy folder needs a {MAIN_FILE} with its name and kind", path=str(path))
        doc = _read_one(main_path)
        found = sorted(p for p in path.rglob("*.yaml") if p != main_path)
        if doc.parts is None:
            order = found
        else:
            # `parts` fixes the order (and so the order of lists and measures) and must be complete.
            order = []
            for part in doc.parts:
                part_path = path / part
                if part_path not in found:
                    raise doc.error(f"the part '{part}' does not exist in the folder", "parts")
                order.append(part_path)
            missing = [p for p in found if p not in order]
            if missing:
                raise doc.error(
                    f"the file '{missing[0].relative_to(path)}' is in the folder but not in 'parts'", "parts"
                )
        for part_path in order:
            doc = combine(doc, _read_one(part_path))
        return doc
    return _read_one(path)


def _read_one(path: Path) -> PolicyDocument:
    data, lines = read_file(path)
    if data is not None and not isinstance(data, dict):
        raise UserError("a policy file must be a mapping of keys (name, kind, score, lists ...)", path=str(path), line=1)
    return validate(PolicyDocument, data, lines, str(path))


_Deps = tuple[tuple[str, int, int], ...]
_cache: dict[tuple[str, int], tuple[tuple[Path, ...], _Deps, PolicyDocument]] = {}


def load_policy(name_or_path: str | Path, catalogue: Catalogue | None = None) -> PolicyDocument:
    """A policy, layered on the policies it extends and checked against the catalogue.

    For a baseline this is the document itself; for an extension, the baseline with the
    extension applied; for a reform, its base with the reform applied. A part file of a policy
    folder loads the whole folder. Raises :class:`UserError` with file and line.
    """
    cat = catalogue or load_catalogue()
    return _load(find_policy(name_or_path), cat, ())[0]


def _deps_signature(paths: tuple[Path, ...]) -> _Deps:
    return tuple(x for p in paths for x in _signature(p))


def _load(path: Path, cat: Catalogue, seen: tuple[Path, ...]) -> tuple[PolicyDocument, tuple[Path, ...]]:
    path = path.resolve()
    if path.is_file() and path.name == MAIN_FILE:
        path = path.parent
    if path in seen:
        raise UserError("the policy extends itself (a cycle of 'extends')", path=str(path))
    key = (str(path), id(cat))
    hit = _cache.get(key)
    if hit is not None and _deps_signature(hit[0]) == hit[1]:
        return hit[2], hit[0]
    doc = read_document(path)
    if path.is_file() and doc.name is None and doc.kind is None:
        owner = _part_owner(path)
        if owner is not None:
            return _load(owner, cat, seen)
    check_layer_header(doc)
    check_unique_ids(doc)
    assert doc.name is not None
    stamp(doc, doc.name)
    deps: tuple[Path, ...] = (path,)
    if doc.extends is not None:
        try:
            base_path = find_policy(doc.extends, relative_to=path.parent if path.is_file() else path)
        except UserError as err:
            raise doc.error(f"'extends' names a policy that cannot be found: {err.sentence()}", "extends") from None
        base, base_deps = _load(base_path, cat, seen + (path,))
        deps += base_deps
        if doc.kind == "extension" and base.kind != "baseline":
            raise doc.error(
                f"an extension must extend a baseline, but '{doc.extends}' is not one ({base.kind})", "extends"
            )
        result = layer(base, doc)
    else:
        result = doc
        result._layers = (doc.name,)
    result._own = doc
    check_policy(result, cat)
    _cache[key] = (deps, _deps_signature(deps), result)
    return result, deps


def baseline_of(doc: PolicyDocument) -> PolicyDocument:
    """The baseline at the bottom of a layered policy."""
    while doc.base is not None:
        doc = doc.base
    return doc


def extension_of(doc: PolicyDocument) -> PolicyDocument | None:
    """The extension layer in a policy's chain (the layered document), if any."""
    node: PolicyDocument | None = doc
    while node is not None:
        if node.kind == "extension":
            return node
        node = node.base
    return None


def default_extension(region: str, baseline: str) -> str | None:
    """The shipped extension written for ``region`` on top of ``baseline``, if there is one.

    This is how a scenario can associate regions with extensions by default: an extension's
    ``region`` key names the region it was written for.
    """
    base_path = find_policy(baseline).resolve()
    seen: set[Path] = set()
    for name, path in sorted(shipped_policies().items(), key=lambda kv: (kv[0].count("/"), kv[0])):
        if path in seen:
            continue  # a longer name of a policy already seen under its short name
        seen.add(path)
        kind, doc_region, extends = _header(path)
        if kind != "extension" or doc_region != region or extends is None:
            continue
        if find_policy(extends, relative_to=path.parent).resolve() == base_path:
            return name
    return None


_headers: dict[Path, tuple[tuple[tuple[str, int, int], ...], tuple[str | None, str | None, str | None]]] = {}


def _header(path: Path) -> tuple[str | None, str | None, str | None]:
    """(kind, region, extends) of a policy, cached by the files' timestamps."""
    sig = _signature(path)
    hit = _headers.get(path)
    if hit is not None and hit[0] == sig:
        return hit[1]
    try:
        doc = read_document(path)
        header = (doc.kind, doc.region, doc.extends)
    except UserError:
        header = (None, None, None)
    _headers[path] = (sig, header)
    return header
