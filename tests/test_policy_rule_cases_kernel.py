"""Every rule case of tests/rules/ run through the compiled tables and the real day kernel.

``socialcredit.policy.runner.run_case`` builds a world where nothing happens unless a case
scripts it, injects the case's records on their days and compares what the kernel leaves with
the expectations (points, score, grade, lists, measures in force).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from socialcredit.errors import UserError
from socialcredit.policy import load_cases
from socialcredit.policy.runner import run_case, simulate_case

RULES = Path(__file__).parent / "rules"
FILES = sorted(RULES.glob("*.yaml"))



def _all_cases() -> list:
    out = []
    for f in FILES:
        for c in load_cases(f):
            out.append(pytest.param(c, id=f"{f.name}:{c.name}"))
    return out


@pytest.mark.parametrize("case", _all_cases())
def test_rule_case_holds_in_the_kernel(case) -> None:  # type: ignore[no-untyped-def]
    mismatches = run_case(case)
    assert not mismatches, "\n".join(m.sentence() for m in mismatches)


def _one(text: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    return load_cases(path)[0]


HEAD = "cases:\n  - name: x\n    policy: national\n    region: rongcheng\n    start: 2019-01-01\n"


def test_a_wrong_expectation_is_reported_with_its_line(tmp_path: Path) -> None:
    case = _one(HEAD + "    subject: {kind: citizen, age: 2}\n"
                "    records: [{date: 2019-03-01, act: traffic_ticket}]\n"
                "    expect:\n"
                "      - {date: 2019-03-02, points: -5, score: 995}\n"
                "      - {date: 2019-03-02, points: -6, lists: [train_ban]}\n", tmp_path)
    mismatches = run_case(case)
    assert [(m.key, m.expected, m.actual, m.line) for m in mismatches] == [
        ("points", -6, -5, 10), ("lists", ("train_ban",), (), 10)]
    assert "line 10" in mismatches[0].sentence() and "-6" in mismatches[0].sentence()


def test_records_arrive_in_the_kernels_record_phase(tmp_path: Path) -> None:
    """A record on the first day counts after scoring starts, and the grade it forces holds
    that same day; a record on 1 January comes after the turn of the year (escalation counts
    only the new year's records)."""
    case = _one(
        "cases:\n  - name: x\n    policy: unified\n    region: control\n    start: 2019-12-31\n"
        "    subjects:\n"
        "      driver: {kind: citizen, age: 2, consent: true}\n"
        "      critic: {kind: citizen, age: 2, consent: true}\n"
        "    records:\n"
        "      - {date: 2019-12-31, subject: driver, act: drunk_driving}\n"
        "      - {date: 2019-12-31, subject: critic, act: criticise_government}\n"
        "      - {date: 2020-01-01, subject: critic, act: criticise_government}\n"
        "    expect:\n"
        "      - {date: 2019-12-31, subject: driver, score: 1000, grade: C}\n"
        "      - {date: 2019-12-31, subject: critic, points: -50, score: 950}\n"
        "      - {date: 2020-01-01, subject: critic, points: -100, score: 900}\n", tmp_path)
    run = simulate_case(case)
    first = run.observed[(dt.date(2019, 12, 31), "driver")]
    assert (first.score, first.grade) == (1000, "C")
    assert run_case(case) == []


def test_one_record_per_subject_and_day(tmp_path: Path) -> None:
    case = _one(HEAD + "    subject: {kind: citizen, age: 2}\n"
                "    records:\n"
                "      - {date: 2019-03-01, act: traffic_ticket}\n"
                "      - {date: 2019-03-01, act: bank_arrears}\n"
                "    expect: [{date: 2019-03-02, points: -15}]\n", tmp_path)
    with pytest.raises(UserError, match="two records on 2019-03-01") as info:
        run_case(case)
    assert info.value.line == 9


def test_meeting_an_obligation_that_was_never_opened_is_refused(tmp_path: Path) -> None:
    case = _one(HEAD + "    subject: {kind: citizen, age: 2}\n"
                "    records: [{date: 2019-03-01, act: traffic_ticket, meets: true}]\n"
                "    expect: [{date: 2019-03-02, points: 0}]\n", tmp_path)
    with pytest.raises(UserError, match="no open obligation"):
        run_case(case)


def test_a_false_record_opens_no_obligation(tmp_path: Path) -> None:
    """A false court default lists the subject, but with no obligation open the list's
    'obligation met' exit applies the next day (the kernel's documented semantics)."""
    case = _one(
        "cases:\n  - name: x\n    policy: national\n    region: control\n    start: 2019-01-01\n"
        "    subject: {kind: citizen, age: 2}\n"
        "    records: [{date: 2019-03-01, act: court_default, true: false}]\n"
        "    expect:\n"
        "      - {date: 2019-03-01, lists: [judgment_debtors]}\n"
        "      - {date: 2019-03-02, lists: []}\n", tmp_path)
    assert run_case(case) == []


def test_meeting_every_obligation_after_an_extension_ends_the_listing_at_once(tmp_path: Path) -> None:
    """Regression (kernel/step.py, exits): the 'obligation met' exit waited until the entry
    day plus the extensions (the start of the term was computed as the end minus the term),
    holding a debtor who had paid for up to a year per extension; the policy says the listing
    is removed at once once the obligation is met."""
    case = _one(
        "cases:\n  - name: x\n    policy: national\n    region: control\n    start: 2019-01-01\n"
        "    subject: {kind: citizen, age: 2}\n"
        "    records:\n"
        "      - {date: 2019-03-01, act: court_default}\n"
        "      - {date: 2019-04-01, act: court_default}\n"
        "      - {date: 2019-05-01, act: court_default, meets: true}\n"
        "      - {date: 2019-05-02, act: court_default, meets: true}\n"
        "    expect:\n"
        "      - {date: 2019-05-01, lists: [judgment_debtors]}\n"
        "      - {date: 2019-05-02, lists: [], measures: []}\n", tmp_path)
    assert run_case(case) == []
