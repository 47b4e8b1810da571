"""``socialcredit run --reform NAME|FILE`` (issue 15, item 4): a reform on top of a scenario
without copying it, then ``compare`` at full detail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import invoke
from socialcredit.store import Run

REFORM = """\
name: mine
kind: reform
extends: national
description: "Test reform: the ban on private schools for debtors' children goes."
reference: "Test reform [U]"
measures:
  - id: jd_no_private_school
    remove: true
"""


def test_run_with_reforms_by_name_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text(REFORM, encoding="utf-8")
    small = ["--citizens", "1500", "--days", "30", "--ledger"]
    code, out, err = invoke(["run", "--out", "base", *small], monkeypatch, capsys)
    assert code == 0, err
    code, out, err = invoke(["run", "--out", "reformed", *small, "--reform",
                             "list_term_one_year", "--reform", "mine.yaml"], monkeypatch, capsys)
    assert code == 0, err
    policy = Run.open("reformed").manifest["policy"]
    assert policy["name"].endswith("+list_term_one_year+mine")
    assert policy["reforms"] == ["list_term_one_year", str((tmp_path / "mine.yaml").resolve())]
    assert policy["hash"] != Run.open("base").manifest["policy"]["hash"]
    code, out, err = invoke(["compare", "base", "reformed", "--json"], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads(out)["same_policy"] is False


@pytest.mark.parametrize("reform,words", [
    ("nosuch", "'nosuch'"),
    ("missing.yaml", "the reform file missing.yaml does not exist"),
    ("national", "the policy national is a baseline, not a reform"),
])
def test_a_bad_reform_is_one_sentence_and_nothing_runs(
        reform: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(["run", "--out", "r", "--citizens", "500", "--days", "2",
                             "--reform", reform], monkeypatch, capsys)
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())
