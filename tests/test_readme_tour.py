"""The README's tour, top to bottom as written, at small scale (issue 15): every command line
of its shell block, the DuckDB query and the Python example."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import duckdb
import pytest

from cli_support import invoke

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL = {"citizens": "2000", "days": "30"}


def _blocks(lang: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    tour = text[text.index("## A short tour"):text.index("## The explorer")]
    return re.findall(rf"```{lang}\n(.*?)```", tour, flags=re.S)


def tour_commands() -> list[list[str]]:
    """The tour's `socialcredit` commands (comments dropped), runs scaled down."""
    out = []
    for line in _blocks("sh")[0].splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("socialcredit "):
            continue
        args = shlex.split(line)[1:]
        if args[0] == "run":
            for opt, value in SMALL.items():
                if f"--{opt}" in args:
                    args[args.index(f"--{opt}") + 1] = value
                else:
                    args += [f"--{opt}", value]
            if args[1] == "china":  # 31 provinces: a few more citizens
                args[args.index("--citizens") + 1] = "6200"
        out.append(args)
    return out


def test_the_tour_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    commands = tour_commands()
    assert [c[0] for c in commands].count("run") == 4 and ["serve", "runs"] in commands
    for args in commands:
        if args[0] == "serve":  # a server runs until stopped: check the app over the folder
            from fastapi.testclient import TestClient

            from socialcredit.web import create_app

            with TestClient(create_app(Path(args[1]))) as client:
                made = [p for p in Path(args[1]).iterdir() if p.is_dir()]
                assert len(client.get("/api/runs").json()) == len(made) >= 3
                assert client.get("/api/docs").status_code == 200
            continue
        code, out, err = invoke(args, monkeypatch, capsys)
        assert code == 0, f"socialcredit {' '.join(args)}: {err}"
        if args[0] == "compare" and "--out" in args:
            assert "changed subjects to" in out and Path(args[args.index("--out") + 1]).is_file()
        if args[0] == "explain":
            assert "1234" in out
    assert Path("runs/default/report.html").is_file()

    # the DuckDB query, with a plain DuckDB client from another directory
    sql = _blocks("sh")[1]
    query = re.search(r'-c "(.*)"', sql, flags=re.S)
    assert query is not None
    monkeypatch.chdir(tmp_path / "runs")
    con = duckdb.connect(str(tmp_path / "runs/default/run.duckdb"), read_only=True)
    assert con.sql(query.group(1)).fetchall() is not None
    con.close()

    # the Python example, scaled down
    monkeypatch.chdir(tmp_path)
    code = _blocks("python")[0].replace("citizens=100_000, days=365", "citizens=1000, days=20")
    pytest.importorskip("pandas")
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert len(scope["denied"]) >= 0  # type: ignore[arg-type]
