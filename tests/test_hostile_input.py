"""Hostile but fair input (issue 16): every bad file or value is one plain sentence with exit
code 2, before any work starts, never a hang, a crash, or a write outside the run.

One test per class of input, each through the command a user would type."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.cli_support import invoke

POLICY = "name: hostile\nkind: baseline\nreference: test\n"
BOMB = "name: bomb\n" + "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))


def _files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Hostile YAML files by name, each with a fragment of the sentence it must give."""
    out: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, fragment: str) -> None:
        path = folder / f"{name}.yaml"
        path.write_bytes(data)
        out[name] = (path, fragment)

    put("alias bomb", BOMB.encode(), "expands to more than 1,000,000 values")
    put("too large", (POLICY + "description: '" + "a" * (3 << 20) + "'\n").encode(),
        "larger than 2 MB")
    put("nested deep", (POLICY + "x: " + "[" * 100 + "]" * 100 + "\n").encode(),
        "nested more than 64 deep")
    put("recursive alias", (POLICY + "x: &r [1, *r]\n").encode(), "alias")
    put("NUL byte", (POLICY + "\x00\n").encode(), "line 4: the file holds a NUL byte")
    put("not UTF-8", (POLICY + "description: \xff\xfe\n").encode("latin-1"),
        "line 4: the file is not UTF-8 text")
    put("byte-order mark", b"\xef\xbb\xbf" + POLICY.encode(), "byte-order mark")
    put("custom tag", (POLICY + "description: !secret x\n").encode(), "the tag '!secret'")
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)  # no writer: reading it would wait forever
    out["pipe"] = (fifo, "not a regular file")
    out["device"] = (Path("/dev/zero"), "not a regular file")
    return out


@pytest.mark.parametrize("command", [["policy", "check"], ["run"], ["sweep"]])
def test_hostile_yaml_files_are_one_sentence(tmp_path: Path, command: list[str],
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for name, (path, fragment) in _files(tmp_path).items():
        code, out, err = invoke([*command, str(path)], monkeypatch, capsys)
        said = [line for line in (out + err).splitlines() if line.strip()]
        assert code == 2, (name, out, err)
        assert fragment in said[0] and str(path) in said[0], (name, said)
        assert "Traceback" not in out + err and "Error:" not in out + err, name
        assert not (tmp_path / "runs").exists(), name
