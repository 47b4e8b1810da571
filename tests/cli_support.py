"""Running the CLI in-process, as a user would type it, for tests of its output."""

from __future__ import annotations

import sys

import pytest

from socialcredit.cli import main


def invoke(args: list[str], monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str], columns: int = 160) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``socialcredit ARGS``."""
    monkeypatch.setattr(sys, "argv", ["socialcredit", *args])
    monkeypatch.setenv("COLUMNS", str(columns))
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
