"""The policy reader (libyaml, YAML 1.2 types) reads every shipped file as ruamel.yaml does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from socialcredit.catalogue import yamlsource

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "src" / "socialcredit").rglob("*.yaml")) + sorted((ROOT / "tests").rglob("*.yaml"))


def _reference(text: str) -> Any:
    """The file as ruamel.yaml's safe (YAML 1.2) reader types it: keys as their text, dates as
    text (the policy layer parses them itself), other scalars as ruamel constructs them."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    yaml = YAML(typ="safe", pure=True)
    tag = "tag:yaml.org,2002:"

    def build(node: Any) -> Any:
        if isinstance(node, MappingNode):
            return {str(k.value): build(v) for k, v in node.value}
        if isinstance(node, SequenceNode):
            return [build(v) for v in node.value]
        if node.tag in {tag + "int", tag + "float", tag + "bool", tag + "null"}:
            return yaml.constructor.construct_object(node, deep=True)
        return str(node.value)

    return build(yaml.compose(text))


def test_there_are_files_to_compare() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_read_as_ruamel_reads_them(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    data, lines = yamlsource.parse_text(text, str(path))
    assert data == _reference(text)
    assert lines[()] >= 1


@pytest.mark.parametrize("text, value", [
    ("a: 010", 10), ("a: 0o17", 15), ("a: 0x1F", 31), ("a: 1_000", 1000), ("a: 1.5e3", 1500.0),
    ("a: -.Inf", float("-inf")), ("a: yes", "yes"), ("a: no", "no"), ("a: on", "on"),
    ("a: ~", None), ("a:", None), ("a: True", True), ("a: '1'", "1"), ("a: +12", 12),
    ("a: .5", 0.5), ("a: 2021-02-30", "2021-02-30"), ("a: |\n  7\n", "7\n"),
])
def test_scalars_are_typed_by_yaml_1_2(text: str, value: Any) -> None:
    assert yamlsource.parse_text(text, "x.yaml")[0] == {"a": value}


def test_merge_keys_and_duplicates_are_errors_with_lines() -> None:
    from socialcredit.errors import UserError

    with pytest.raises(UserError, match="merge keys") as info:
        yamlsource.parse_text("a: 1\n<<: {b: 2}\n", "x.yaml")
    assert info.value.line == 2
    with pytest.raises(UserError, match="appears twice") as info:
        yamlsource.parse_text("a: 1\nb: 2\na: 3\n", "x.yaml")
    assert info.value.line == 3
