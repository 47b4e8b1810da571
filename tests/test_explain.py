"""``socialcredit explain``: one subject's story, replayed from the seed (DESIGN 2.9).

The central check: replaying a subject's group alone gives exactly the rows the whole run
stored in its ledger, for subjects of every kind of story (false records, list entries,
wrongful denials, sanctions through the household, businesses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_support import invoke
from socialcredit.analysis.common import build_run_model
from socialcredit.analysis.explain import (
    explain,
    ledger_check,
    replay_group,
    replay_tables,
    stored_tables,
)
from socialcredit.errors import UserError
from socialcredit.population import uscc_of
from socialcredit.run import simulate
from socialcredit.scenario import Scenario
from socialcredit.store import Run


def busy_scenario() -> Scenario:
    """The unified score with more speech, more false records and school requests, so that a
    small, short run holds every kind of event (September is in: school places)."""
    d = Scenario.load("unified").to_dict()
    d.update(name="busy", start="2018-08-01", days=75, burn_in_days=45)
    beh = d["behaviour"]
    beh["channels"] = {"social_media": {"false_per_year": 1.0, "coverage": 0.8},
                       "camera": {"misid_per_year": 0.5}}
    beh["acts"] = {"criticise_government": {"rate_per_year": 4.0},
                   "spread_rumours": {"rate_per_year": 2.0},
                   # businesses with points of their own to explain
                   "late_tax_payment": {"rate_per_year": 1.0}}
    beh["services"] = {"private_school": {"requests_per_year": 1.0}}
    return Scenario.from_dict(d)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("explain")
    sc = busy_scenario()
    return {
        "ledger": simulate(sc, out=root / "ledger", citizens=4000, ledger=True),
        "plain": simulate(sc, out=root / "plain", citizens=4000),
    }


@pytest.fixture(scope="module")
def run(runs: dict[str, Path]) -> Run:
    return Run.open(runs["ledger"])


@pytest.fixture(scope="module")
def model(run: Run) -> Any:
    return build_run_model(run)


def first(run: Run, query: str) -> int:
    rows = run.sql(query).column(0).to_pylist()
    assert rows, f"the test run has no subject for: {query}"
    return int(rows[0])


@pytest.fixture(scope="module")
def subjects(run: Run) -> dict[str, int]:
    """One subject for every kind of story."""
    C = int(run.manifest["population"]["citizens"])
    return {
        "child denied through a parent": first(
            run, "SELECT subject_id FROM decisions WHERE service = 'private_school' "
                 "AND outcome = 'denied' ORDER BY subject_id"),
        "wrongful denial": first(
            run, "SELECT subject_id FROM decisions WHERE wrongful AND service <> 'private_school' "
                 "ORDER BY subject_id"),
        "false-caused listing": first(
            run, "SELECT subject_id FROM list_events WHERE false_caused ORDER BY subject_id"),
        "most points": first(
            run, "SELECT subject_id FROM ledger GROUP BY 1 ORDER BY count(*) DESC, 1"),
        "business": first(
            run, f"SELECT subject_id FROM ledger WHERE subject_id >= {C} ORDER BY subject_id"),
        "first citizen": 0,
        "last business": C + int(run.manifest["population"]["businesses"]) - 1,
    }


def rows(table: Any) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


def test_replay_equals_ledger(run: Run, model: Any, subjects: dict[str, int]) -> None:
    seen = dict.fromkeys(("records", "ledger", "list_events", "decisions"), 0)
    for what, sid in subjects.items():
        replay = replay_group(run, sid, model=model)
        replayed = replay_tables(replay)
        stored = stored_tables(run, sid)
        for name in seen:
            assert rows(replayed[name]) == rows(stored[name]), f"{what} ({sid}): {name} differs"
            seen[name] += stored[name].num_rows
        assert ledger_check(replay)["status"] == "identical"
    # the subjects chosen cover every table
    assert all(n > 0 for n in seen.values()), seen


def test_every_member_of_a_replayed_group_matches(run: Run, model: Any,
                                                  subjects: dict[str, int]) -> None:
    replay = replay_group(run, subjects["child denied through a parent"], model=model)
    assert len(replay.members) > 1
    for member in replay.members:
        assert ledger_check(replay, member)["status"] == "identical"


def test_story_without_a_ledger_is_the_same(runs: dict[str, Path],
                                            subjects: dict[str, int]) -> None:
    sid = subjects["wrongful denial"]
    with_ledger = explain(runs["ledger"], sid)
    without = explain(runs["plain"], sid)
    assert with_ledger["ledger_check"]["status"] == "identical"
    assert without["ledger_check"] == {"status": "no ledger", "tables": {}}
    for key in ("days", "summary", "at_start", "at_end", "attributes", "policy"):
        assert with_ledger[key] == without[key], key


def test_a_wrongful_denial_tells_its_false_record(run: Run, subjects: dict[str, int]) -> None:
    story = explain(run, subjects["wrongful denial"], check=False)
    events = [e for d in story["days"] for e in d["events"]]
    wrongful = [e for e in events if e["type"] == "decision" and e["wrongful"]]
    assert wrongful and all(e["outcome"] == "denied" and e["measure"] for e in wrongful)
    assert all(e["trigger"] for e in wrongful), "the measure behind a denial is explained"
    assert all(e["reference"] for e in wrongful), "and its reference given"
    s = story["summary"]
    assert s["wrongful"] == len(wrongful)
    assert s["requests"] == sum(1 for e in events if e["type"] == "decision")
    assert s["net_points"] == sum(e["points"] for e in events if e["type"] == "points")
    scored = [e for e in events if e["type"] == "points" and e["rule"].startswith("unified.")]
    assert scored, "the subject's points come from the policy's rules"
    for e in scored:
        assert e["reference"], "every rule's points carry its reference"


def test_a_sanction_through_the_household(run: Run, model: Any,
                                          subjects: dict[str, int]) -> None:
    sid = subjects["child denied through a parent"]
    story = explain(run, sid, check=False, model=model)
    assert story["attributes"]["age_band"] == "child"
    denied = [e for d in story["days"] for e in d["events"]
              if e["type"] == "decision" and e["outcome"] == "denied"]
    assert denied
    household = {m["subject_id"]: m["age_band"] for m in story["attributes"]["household"]}
    for e in denied:
        via = e["via"]
        assert via is not None and via["relation"] == "an adult of its household"
        assert household[via["subject_id"]] != "child"
        assert e["trigger"].startswith(("grade ", "on the list "))
    assert story["summary"]["reached_through_group"] == len(
        [e for d in story["days"] for e in d["events"] if e["type"] == "decision" and e.get("via")])


def test_business_by_uscc(run: Run, model: Any, subjects: dict[str, int]) -> None:
    sid = subjects["business"]
    code = uscc_of(model.population, sid)
    story = explain(run, code, model=model)
    assert story["subject_id"] == sid and story["kind"] == "business" and story["uscc"] == code
    assert story["ledger_check"]["status"] == "identical"


def test_unknown_subjects_are_refused(run: Run, model: Any) -> None:
    n = int(run.manifest["population"]["citizens"]) + int(run.manifest["population"]["businesses"])
    with pytest.raises(UserError, match="does not exist"):
        replay_group(run, n, model=model)
    with pytest.raises(UserError, match="not a Unified Social Credit Code"):
        replay_group(run, "nobody", model=model)


# --- the command --------------------------------------------------------------------------------


def cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return invoke(args, monkeypatch, capsys, columns=160)


def test_cli_terminal_and_json(runs: dict[str, Path], subjects: dict[str, int],
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    sid = str(subjects["wrongful denial"])
    code, out, err = cli(["explain", str(runs["ledger"]), sid], monkeypatch, capsys)
    assert code == 0, err
    assert f"citizen {sid}" in out and "DENIED" in out and "WRONGFUL" in out
    assert "matches the stored ledger row for row" in out
    code, out, err = cli(["explain", str(runs["plain"]), sid, "--json"], monkeypatch, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["subject_id"] == int(sid) and data["ledger_check"]["status"] == "no ledger"
    assert {"attributes", "days", "summary", "at_start", "at_end", "period"} <= set(data)


def test_cli_bad_input(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ([str(tmp_path / "missing"), "1"], "there is no run at"),
        ([str(runs["plain"]), "99999999"], "does not exist"),
        ([str(runs["plain"]), "someone"], "not a Unified Social Credit Code"),
    ]
    partial = tmp_path / ".busy.partial"
    partial.mkdir()
    cases.append(([str(tmp_path / "busy"), "1"], "still being written"))
    for args, sentence in cases:
        code, out, err = cli(["explain", *args], monkeypatch, capsys)
        assert code == 2, (args, out, err)
        assert sentence in err and err.startswith("error: ") and err.count("\n") == 1
        assert "Traceback" not in out + err


def test_cli_reads_codes_by_gb32100(runs: dict[str, Path], model: Any,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """An 18-character SUBJECT is a code even when it is all digits; a well-formed code of
    another region is refused."""
    pop = model.population
    C = pop.n_citizens
    digits = [b for b in range(C, C + pop.n_businesses) if uscc_of(pop, b).isdigit()]
    assert digits, "the test run has no business whose code is all digits"
    sid = digits[0]
    code, out, err = cli(["explain", str(runs["plain"]), uscc_of(pop, sid), "--json"],
                         monkeypatch, capsys)
    assert code == 0, err
    assert json.loads(out)["subject_id"] == sid
    from socialcredit.uscc import code_for

    right = uscc_of(pop, sid)
    region = int(right[2:8])
    other = code_for(sid, region + 1 if region < 999_999 else 0)
    code, out, err = cli(["explain", str(runs["plain"]), other], monkeypatch, capsys)
    assert code == 2, (out, err)
    assert err.startswith("error: no business of this run has the code ")
    assert "region part" in err and err.count("\n") == 1
