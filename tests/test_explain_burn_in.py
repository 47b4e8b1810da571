"""A subject already listed when the reported days begin: explain says which burn-in entry
put it there (issue 15, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import invoke
from socialcredit.analysis.explain import explain
from socialcredit.run import simulate
from socialcredit.store import Run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("burn") / "run"
    return Run.open(simulate("default", out=out, citizens=3000, days=30, ledger=True))


def _listed_at_start(run: Run) -> list[int]:
    # on a list in the first snapshot without having entered it in the reported days
    rows = run.sql("""
        SELECT subject_id FROM snapshots
        WHERE day = (SELECT min(day) FROM snapshots) AND lists <> 0
          AND subject_id NOT IN (SELECT subject_id FROM list_events WHERE event = 'enter')
        ORDER BY subject_id LIMIT 5""").to_pylist()
    return [int(r["subject_id"]) for r in rows]


def test_the_burn_in_entry_is_told(run: Run, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    listed = _listed_at_start(run)
    assert listed, "the fixture should have subjects listed since the burn-in"
    start = run.manifest["calendar"]["start"]
    for sid in listed:
        story = explain(run, sid)
        held = {e["list"] for e in story["at_start"]["lists"]}
        told = story["at_start"]["listed_in_burn_in"]
        assert held and {e["list"] for e in told} == held, sid
        for e in told:
            assert e["day"] < start and e["reason"] and isinstance(e["records"], list)
        assert story["ledger_check"]["status"] == "identical"
    code, out, err = invoke(["explain", str(run.path), str(listed[0])], monkeypatch, capsys)
    assert code == 0, err
    assert "(burn-in):" in out


def test_a_subject_not_listed_at_start_has_none(run: Run) -> None:
    story = explain(run, 0)
    if not story["at_start"]["lists"]:
        assert story["at_start"]["listed_in_burn_in"] == []


def test_the_credit_file_carries_it(run: Run, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from socialcredit.web import create_app

    sid = _listed_at_start(run)[0]
    with TestClient(create_app(run.path.parent)) as client:
        f = client.get(f"/api/runs/{run.path.name}/subjects/{sid}?source=replay").json()
    assert f["at_start"]["listed_in_burn_in"]
