"""``socialcredit policy check | show | diff`` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import invoke
from socialcredit.policy import POLICIES_DIR


def run(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return invoke(args, monkeypatch, capsys, columns=160)


def test_check_every_shipped_policy_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted(POLICIES_DIR.rglob("*.yaml"))]
    code, out, err = run(["policy", "check", *files], monkeypatch, capsys)
    assert code == 0, out + err
    assert out.count("ok") == len(files)


def test_check_reports_the_first_error_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nkind: baseline\nscores: {}\n", encoding="utf-8")
    code, out, err = run(["policy", "check", "national", str(bad)], monkeypatch, capsys)
    assert code == 2
    assert "ok" in out and f"{bad}, line 3: unknown key 'scores'" in out
    assert err.strip() == "error: 1 of 2 policies failed the check"
    assert "Traceback" not in out + err


def test_show_resolves_region_and_date(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["policy", "show", "national", "--region", "rongcheng", "--date", "2021-06-01"], monkeypatch, capsys)
    assert code == 0
    assert "national > rongcheng" in out
    assert "traffic_ticket" in out and "points: -5" in out
    assert "consent required: yes" in out
    assert "rongcheng_low_grade_loans" not in out
    assert "Rongcheng press reports" in out


def test_show_without_date_prints_histories(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["policy", "show", "rongcheng"], monkeypatch, capsys)
    assert code == 0
    assert "no from 2014-01-01; yes from 2021-01-01" in out


def test_show_bad_inputs_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["policy", "show", "national", "--date", "2021-02-30"], monkeypatch, capsys)
    assert code == 2 and "'2021-02-30' is not a date" in err
    code, _, err = run(["policy", "show", "nationl"], monkeypatch, capsys)
    assert code == 2 and "did you mean 'national'?" in err
    code, _, err = run(["policy", "show", "national", "--region", "mars"], monkeypatch, capsys)
    assert code == 2 and "unknown region 'mars'" in err


def test_diff(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["policy", "diff", "national", "list_term_one_year"], monkeypatch, capsys)
    assert code == 0
    assert "judgment_debtors" in out and "0 -> 365" in out
    assert "0 added, 0 removed, 2 changed" in out
    code, out, _ = run(["policy", "diff", "national", "national"], monkeypatch, capsys)
    assert code == 0 and "the same rules" in out
    code, out, _ = run(["policy", "diff", "national", "unified"], monkeypatch, capsys)
    assert code == 0 and "added" in out and "removed" in out


def test_check_a_folder_of_policies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the folder of shipped policies: the national folder is one policy, the rest are files
    code, out, err = run(["policy", "check", str(POLICIES_DIR)], monkeypatch, capsys)
    assert code == 0, out + err
    assert out.count("ok") == len(list(POLICIES_DIR.glob("*.yaml"))) + 1 + len(
        list((POLICIES_DIR / "reforms").glob("*.yaml")))
    assert f"ok   {POLICIES_DIR / 'national'}\n" in out
    mine = tmp_path / "mine"
    (mine / "deeper").mkdir(parents=True)
    (mine / "deeper" / "bad.yaml").write_text("name: bad\nkind: baseline\nscores: {}\n",
                                             encoding="utf-8")
    (mine / "notes.txt").write_text("not a policy", encoding="utf-8")
    code, out, err = run(["policy", "check", str(mine)], monkeypatch, capsys)
    assert code == 2 and "bad.yaml, line 3: unknown key 'scores'" in out
    assert err.strip() == "error: 1 of 1 policy failed the check"
    (tmp_path / "empty").mkdir()
    code, out, err = run(["policy", "check", str(tmp_path / "empty")], monkeypatch, capsys)
    assert code == 2 and err.strip().startswith("error: the folder") and "holds no policy" in err
