"""Bad policy inputs: each gives one plain sentence naming the file and the right line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from socialcredit.errors import UserError
from socialcredit.policy import validate_policy

TABLE = Path(__file__).parent / "policy_cases" / "bad_inputs.yaml"


def _cases() -> list[Any]:
    rows = YAML(typ="safe", pure=True).load(TABLE.read_text(encoding="utf-8"))
    return [pytest.param(row, id=row["name"]) for row in rows]


def test_the_table_is_big_enough() -> None:
    assert len(_cases()) >= 20


@pytest.mark.parametrize("row", _cases())
def test_bad_input(row: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / f"{row['name']}.yaml"
    if row["text"] is not None:
        path.write_text(row["text"], encoding="utf-8")
    with pytest.raises(UserError) as info:
        validate_policy(path)
    err = info.value
    assert row["error"] in err.message, err.sentence()
    assert err.line == row["line"], err.sentence()
    assert err.path is not None and Path(err.path).name == path.name, err.sentence()
    # One plain sentence: no traceback text, no line breaks.
    assert "\n" not in err.sentence() and "Traceback" not in err.sentence()
