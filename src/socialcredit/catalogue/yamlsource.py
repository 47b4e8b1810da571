"""YAML that remembers where each value came from, and pydantic errors as plain sentences.

Users edit the catalogue and the policies by hand, so every mistake must be reported with the
file, the line and one plain sentence. The composer of libyaml (PyYAML's C binding, about ten
times faster than a pure-Python parser, which matters because every run reads a dozen such
files) gives every node its line; we build plain Python data from the node graph ourselves
(instead of letting a constructor do it) so that

- every mapping key and sequence item is recorded in a ``lines`` table keyed by its path,
- dates stay strings (the policy layer parses them and reports impossible ones with their
  line, where a YAML constructor would crash on ``2021-02-30``),
- duplicate keys are reported with the line of the second one,
- plain scalars are typed by the YAML 1.2 core schema (``yes`` and ``no`` are text, not
  booleans as in YAML 1.1), the schema ruamel.yaml applies to the scenario files.

Every YAML file a user gives (policies, scenarios, sweeps, the catalogue) is untrusted: it is
read by :func:`read_text`, which refuses what is not a regular file (a device, a pipe), a file
over :data:`MAX_FILE_BYTES`, bytes that are not UTF-8, a byte-order mark and characters YAML
text cannot hold (a NUL byte), each with the line where there is one; and its values are built
within :data:`MAX_VALUES` (aliases count every time they are used, so an alias bomb is refused
instead of filling the memory) and :data:`MAX_DEPTH`, with no tags but YAML's own.

:func:`validate` then runs a pydantic model over the data and turns the first error (the one
on the earliest line) into a :class:`~socialcredit.errors.UserError`. Models derived from
:class:`Node` also receive their own location, so later semantic checks can point at lines.
"""

from __future__ import annotations

import codecs
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from yaml.error import MarkedYAMLError, YAMLError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.nodes import Node as YamlNode

from socialcredit.errors import UserError

PathKey = tuple[str | int, ...]
Lines = dict[PathKey, int]

#: Error types raised by our own validators, whose messages are complete sentences.
PLAIN_ERRORS = {"bad_date", "bad_date_order"}

_TAG = "tag:yaml.org,2002:"
#: The tags a value may carry: the ones YAML gives plain values itself.
_PLAIN_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}

#: Largest YAML file read. The shipped ones are under 20 KB; a file a hundred times larger is
#: a mistake (or an attack), and reading it whole would take gigabytes of memory.
MAX_FILE_BYTES = 2 << 20
#: Most values (mappings, lists and scalars) one document may expand to. An alias counts each
#: time it is used, so a "billion laughs" file is refused before it is expanded.
MAX_VALUES = 1_000_000
#: Deepest nesting of mappings and lists in a document.
MAX_DEPTH = 64
# Characters YAML text may not contain (YAML 1.2, 5.1: the printable set), the BOM aside.
_UNPRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd"
    "\U00010000-\U0010ffff]"
)
#: libyaml's composer when PyYAML was built with it (its wheels are), else the Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Plain scalars typed as YAML 1.2 does (the regular expressions of ruamel.yaml's resolver for
# version 1.2, so a file reads the same whichever of the two parsers reads it).
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_FLOAT = re.compile(r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0o?[0-7_]+
    |[-+]?[0-9_]+
    |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")


class Node(BaseModel):
    """A pydantic model that knows the file and line it was read from.

    Unknown keys are errors (``extra="forbid"``) and types are strict, so ``"5"`` is not a
    number and ``1`` is not ``true``: a policy file says exactly what it means.
    """

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    _file: str | None = PrivateAttr(default=None)
    _line: int | None = PrivateAttr(default=None)
    _key_lines: dict[str, int] = PrivateAttr(default_factory=dict)
    # keys whose value came from another file (a later layer), by key
    _key_files: dict[str, str] = PrivateAttr(default_factory=dict)
    # where a later layer last changed this node (file, line), if one did
    _touched: tuple[str, int | None] | None = PrivateAttr(default=None)

    @property
    def file(self) -> str | None:
        """The file this node was read from (None when built in code)."""
        return self._file

    @property
    def line(self) -> int | None:
        """The line where this node starts (None when built in code)."""
        return self._line

    @classmethod
    def key_of(cls, field: str) -> str:
        """The YAML key of a field (its alias where it has one, e.g. ``from``)."""
        info = cls.model_fields.get(field)
        return info.alias if info is not None and info.alias else field

    def line_of(self, field: str | None = None) -> int | None:
        """The line of one of this node's keys, or of the node itself."""
        if field is not None:
            key = self.key_of(field)
            if key in self._key_lines:
                return self._key_lines[key]
        return self._line

    def file_of(self, field: str | None = None) -> str | None:
        """The file one of this node's keys came from (a later layer may have set it)."""
        if field is not None:
            return self._key_files.get(self.key_of(field), self._file)
        return self._file

    def where(self, field: str | None = None) -> str:
        """``file, line N`` for messages that name another place."""
        file, line = self.file_of(field), self.line_of(field)
        if file is None:
            return "(built in code)"
        return f"{file}, line {line}" if line else file

    def error(self, message: str, field: str | None = None) -> UserError:
        """A user error located at one of this node's keys, or at the node.

        A node that a later layer changed is located where it was last changed: that is
        where the user is working (an extension that switches a score on but forgets its
        grades should be told so in the extension, not in the baseline).
        """
        if field is None and self._touched is not None:
            return UserError(message, path=self._touched[0], line=self._touched[1])
        return UserError(message, path=self.file_of(field), line=self.line_of(field))

    def touch(self, file: str | None, line: int | None) -> None:
        """Record that a later layer changed this node at ``file``, ``line``."""
        if file is not None:
            self._touched = (file, line)

    def set_location(
        self,
        file: str | None,
        line: int | None,
        key_lines: dict[str, int],
        key_files: dict[str, str] | None = None,
    ) -> None:
        """Attach a location; used by :func:`validate` and by layering."""
        self._file = file
        self._line = line
        self._key_lines = dict(key_lines)
        self._key_files = dict(key_files or {})

    @property
    def key_lines(self) -> dict[str, int]:
        """Lines of this node's keys (a copy)."""
        return dict(self._key_lines)

    @property
    def key_files(self) -> dict[str, str]:
        """Files of keys set by a later layer (a copy)."""
        return dict(self._key_files)


M = TypeVar("M", bound=BaseModel)


def parse_text(text: str, path: str) -> tuple[Any, Lines]:
    """Parse YAML text into plain data and a table of lines by path."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = (err.problem or err.context or "malformed YAML").strip()
        line = mark.line + 1 if mark is not None else None
        raise UserError(f"the file is not valid YAML: {problem}", path=path, line=line) from None
    except YAMLError as err:
        raise UserError(f"the file is not valid YAML: {err}", path=path) from None
    except RecursionError:
        raise UserError(f"values are nested more than {MAX_DEPTH} deep", path=path) from None
    lines: Lines = {}
    if root is None:
        return None, lines
    check_size(root, _node_children, lambda n: n.start_mark.line + 1, path)
    lines[()] = root.start_mark.line + 1
    data = _build(root, (), lines, path)
    return data, lines


def read_text(path: str | Path) -> str:
    """The text of a YAML file given by a user, or a :class:`UserError` saying why not.

    Only a regular file is read (opened without blocking, so a pipe with no writer cannot
    hang the command), and at most :data:`MAX_FILE_BYTES` of it; it must be UTF-8 without a
    byte-order mark and hold only characters that YAML text may contain."""
    where = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UserError("the file does not exist", path=where) from None
    except IsADirectoryError:
        raise UserError("this is a folder, not a YAML file", path=where) from None
    except OSError as err:
        raise UserError(f"the file cannot be read ({err.strerror})", path=where) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UserError("this is a folder, not a YAML file", path=where)
        if not stat.S_ISREG(mode):
            raise UserError(
                "this is not a regular file (a device, a pipe or a socket); give a YAML file",
                path=where,
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise UserError(f"the file cannot be read ({err.strerror})", path=where) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise UserError(
            f"the file is larger than {MAX_FILE_BYTES >> 20} MB, the most a YAML file here may be",
            path=where,
        )
    if data.startswith(codecs.BOM_UTF8):
        raise UserError(
            "the file starts with a byte-order mark; save it as UTF-8 without one", path=where,
            line=1,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UserError("the file is not UTF-8 text", path=where, line=line) from None
    bad = _UNPRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        char = bad.group()
        what = "a NUL byte" if char == "\x00" else f"the control character U+{ord(char):04X}"
        raise UserError(f"the file holds {what}, which YAML text cannot contain", path=where,
                        line=line)
    return text


def read_file(path: str | Path) -> tuple[Any, Lines]:
    """Read one YAML file into plain data and a table of lines by path."""
    return parse_text(read_text(path), str(path))


def check_size(root: Any, children: Any, line_of: Any, file: str | Path) -> None:
    """Refuse a document that expands to more than :data:`MAX_VALUES` values, nests deeper
    than :data:`MAX_DEPTH` or holds an alias of a value that contains it.

    ``children(x)`` lists the values inside ``x`` (none for a scalar) and ``line_of(x)`` its
    line; both parsers' trees are walked this way. Values shared through aliases are counted
    once per use, but walked only once, so the check itself stays linear in the file."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children(node))
            if sizes[key] > MAX_VALUES:
                raise UserError(
                    f"the file expands to more than {MAX_VALUES:,} values (aliases count "
                    "each time they are used); write the values out",
                    path=str(file),
                )
            continue
        if key in sizes:
            continue
        if key in open_:
            raise UserError("an alias refers to a value that contains it", path=str(file),
                            line=line_of(node))
        kids = list(children(node))
        if not kids:
            sizes[key] = 1
            continue
        if depth > MAX_DEPTH:
            raise UserError(f"values are nested more than {MAX_DEPTH} deep", path=str(file),
                            line=line_of(node))
        open_.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in kids)


def _node_children(node: YamlNode) -> list[YamlNode]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _key_text(node: YamlNode) -> str:
    # Keys are names or dates; `true:` in a case file is the key "true", not a boolean.
    return str(node.value)


def _int(text: str) -> int:
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if t.startswith(prefix):
            return sign * int(t[2:], base)
    return sign * int(t)  # a leading zero is decimal, as ruamel.yaml reads it


def _float(text: str) -> float:
    t = text.replace("_", "").lower()
    if t.endswith("nan"):
        return math.nan
    if t.endswith("inf"):
        return -math.inf if t.startswith("-") else math.inf
    return float(t)


def _scalar(node: ScalarNode) -> Any:
    """A scalar's value: quoted and block scalars are text; plain ones are typed by YAML 1.2."""
    value = str(node.value)
    if node.style:  # quoted, literal or folded (libyaml gives plain scalars no style)
        return value
    if _NULL.match(value):
        return None
    if _BOOL.match(value):
        return value[0] in "tT"
    if _INT.match(value):
        return _int(value)
    if _FLOAT.match(value):
        return _float(value)
    return value


def _build(node: YamlNode, path: PathKey, lines: Lines, file: str) -> Any:
    if node.tag not in _PLAIN_TAGS:
        raise UserError(
            f"the tag '{node.tag}' is not supported; write plain values without tags",
            path=file,
            line=node.start_mark.line + 1,
        )
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise UserError(
                    "a key must be a plain name, not a list or a mapping",
                    path=file,
                    line=key_node.start_mark.line + 1,
                )
            if key_node.value == "<<" and not key_node.style:
                raise UserError(
                    "YAML merge keys ('<<') are not supported; write the values out",
                    path=file,
                    line=key_node.start_mark.line + 1,
                )
            # Keys are names or dates; `true:` in a case file is the key "true", not a boolean.
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in out:
                raise UserError(f"the key '{key}' appears twice", path=file, line=line)
            lines[path + (key,)] = line
            out[key] = _build(value_node, path + (key,), lines, file)
        return out
    if isinstance(node, SequenceNode):
        items: list[Any] = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_build(item, path + (i,), lines, file))
        return items
    assert isinstance(node, ScalarNode)
    return _scalar(node)


def did_you_mean(name: str, known: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` when a known name is close to ``name``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(name, [str(k) for k in known], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- pydantic errors as sentences ---------------------------------------------------------


def _match(loc: tuple[Any, ...], lines: Lines) -> tuple[PathKey, int | None]:
    """The longest real document path within a pydantic ``loc`` and its line.

    ``loc`` also holds union tags and markers such as ``"[key]"``; those are skipped.
    """
    path: PathKey = ()
    for part in loc:
        candidate = path + (part,)
        if candidate in lines:
            path = candidate
    return path, lines.get(path)


def dotted(path: PathKey) -> str:
    """A document path as users write it: ``score.citizen.rules[2].points``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _sentence(err: dict[str, Any], path: PathKey) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    here = dotted(path)
    parent = dotted(path[:-1])
    if kind == "extra_forbidden":
        inside = f" in '{parent}'" if parent else ""
        return f"unknown key '{path[-1] if path else '?'}'{inside}"
    if kind == "missing":
        field = err["loc"][-1] if err["loc"] else "?"
        inside = f" in '{here}'" if here else ""
        return f"the required key '{field}' is missing{inside}"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        return msg[0].lower() + msg[1:] if here == "" else f"'{here}': {msg[0].lower() + msg[1:]}"
    if kind in PLAIN_ERRORS:
        # Our own errors are already sentences; say where when the path helps.
        return f"{msg} (in '{here}')" if here and kind != "bad_date" else msg
    text = msg[0].lower() + msg[1:]
    if "input" in err and kind not in {"dict_type", "list_type", "model_type"}:
        text += f" (got {err['input']!r})"
    return f"'{here}' is invalid: {text}" if here else text


def error_from_validation(exc: ValidationError, lines: Lines, file: str) -> UserError:
    """The first error of a validation (by line) as one located sentence."""
    best: tuple[int, int, UserError] | None = None
    for order, err in enumerate(exc.errors(include_url=False)):
        path, line = _match(tuple(err["loc"]), lines)
        # An unknown key's line is its own; a missing key's line is its parent's.
        sentence = _sentence(dict(err), path)
        rank = line if line is not None else 10**9
        if best is None or (rank, order) < (best[0], best[1]):
            best = (rank, order, UserError(sentence, path=file, line=line))
    assert best is not None
    return best[2]


def validate(model: type[M], data: Any, lines: Lines, file: str) -> M:
    """Validate ``data`` with ``model`` and attach locations to every :class:`Node`."""
    if data is None:
        raise UserError("the file is empty", path=file)
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        raise error_from_validation(exc, lines, file) from None
    attach_locations(obj, (), lines, file)
    return obj


def _children(value: Any, path: PathKey) -> Iterator[tuple[Any, PathKey]]:
    if isinstance(value, BaseModel):
        yield value, path
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _children(item, path + (i,))
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _children(item, path + (str(k),))


def attach_locations(obj: BaseModel, path: PathKey, lines: Lines, file: str) -> None:
    """Walk a validated model and give every :class:`Node` its file and lines."""
    key_lines: dict[str, int] = {}
    for name, info in type(obj).model_fields.items():
        key = info.alias or name
        if path + (key,) in lines:
            key_lines[key] = lines[path + (key,)]
        value = getattr(obj, name)
        for child, child_path in _children(value, path + (key,)):
            attach_locations(child, child_path, lines, file)
    if isinstance(obj, Node):
        obj.set_location(file, lines.get(path), key_lines)
