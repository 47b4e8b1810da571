"""The data-driven rule cases in tests/rules/: they load and agree with the policies.

Running them through the day kernel is the engine's job; here every case is read and checked
(acts, lists, measures, grades and regions exist; the policy set-up compiles).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from socialcredit.errors import UserError
from socialcredit.policy import check_case, load_cases

RULES = Path(__file__).parent / "rules"
FILES = sorted(RULES.glob("*.yaml"))


def _all_cases() -> list:
    return [pytest.param(c, id=f"{c.file.rsplit('/', 1)[-1]}:{c.name}") for f in FILES for c in load_cases(f)]


def test_there_are_enough_cases() -> None:
    assert len(_all_cases()) >= 10


@pytest.mark.parametrize("case", _all_cases())
def test_case_agrees_with_its_policies(case) -> None:  # type: ignore[no-untyped-def]
    check_case(case)
    assert case.expect and case.start <= case.end


def test_case_file_shape() -> None:
    cases = {c.name: c for c in load_cases(RULES / "national.yaml")}
    case = cases["a court default lists the debtor and restricts consumption"]
    assert case.extension is None and case.region == "control"
    assert set(case.subjects) == {"debtor", "child"}
    assert case.subjects["child"].household == "debtor"
    assert case.subjects["child"].bands["age"] == 0
    event = case.events[0]
    assert (event.date, event.subject, event.act, event.true, event.meets) == (
        dt.date(2019, 3, 1), "debtor", "court_default", True, False
    )
    first = case.expect[0]
    assert first.check_score and first.score is None and not first.check_grade
    assert first.lists == ("judgment_debtors",)
    rc = {c.name: c for c in load_cases(RULES / "rongcheng.yaml")}
    assert rc["rongcheng traffic ticket costs five points"].extension == "rongcheng"
    assert rc["a false traffic ticket costs the same five points"].events[0].true is False


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("cases:\n  - name: x\n    policy: national\n    region: control\n    start: 2019-01-01\n"
         "    subject: {kind: citizen}\n    records: [{date: 2019-02-01, act: jaywalkin}]\n"
         "    expect: [{date: 2019-02-02, lists: []}]\n", "unknown act 'jaywalkin'", 7),
        ("cases:\n  - name: x\n    policy: national\n    region: control\n    start: 2019-01-01\n"
         "    subject: {kind: citizen}\n    expect: [{date: 2019-02-02, lists: [debtors]}]\n",
         "unknown list 'debtors'", 7),
        ("cases:\n  - name: x\n    policy: national\n    region: control\n    start: 2019-01-01\n"
         "    subject: {kind: citizen}\n    expect: [{date: 2019-02-02, measures: [no_flights]}]\n",
         "unknown measure 'no_flights'", 7),
        ("cases:\n  - name: x\n    policy: national\n    region: rongcheng\n    start: 2019-01-01\n"
         "    subject: {kind: citizen}\n    expect: [{date: 2019-02-02, grade: E}]\n",
         "'E' is not a citizen grade in rongcheng", 7),
        ("cases:\n  - name: x\n    policy: national\n    region: narnia\n    start: 2019-01-01\n"
         "    subject: {kind: citizen}\n    expect: [{date: 2019-02-02, grade: A}]\n",
         "unknown region 'narnia'", 2),
        ("cases:\n  - name: x\n    policy: national\n    region: control\n    start: 2019-01-01\n"
         "    subject: {kind: business, age: 2}\n    expect: [{date: 2019-02-02}]\n",
         "a business has no 'age' band", 6),
    ],
)
def test_bad_case_files(tmp_path: Path, text: str, fragment: str, line: int) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as info:
        for case in load_cases(path):
            check_case(case)
    assert fragment in info.value.message
    assert info.value.line == line and info.value.path == str(path)
