"""One compile cache whoever starts the command, and a word on the progress line while the
kernels compile (issue 15, item 1)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from socialcredit import jitcache

ROOT = Path(__file__).resolve().parents[1]


def test_the_cache_is_one_place_whatever_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    seen = set()
    for cwd in (tmp_path, ROOT, tmp_path / "home"):
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        seen.add(jitcache.cache_base())
    assert seen == {tmp_path / "home" / ".cache" / "socialcredit" / "numba"}
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert jitcache.cache_base() == tmp_path / "xdg" / "socialcredit" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "shared"))
    assert jitcache.cache_dir() == tmp_path / "shared" / jitcache.source_digest()


def test_make_does_not_point_the_cache_elsewhere() -> None:
    # `make run` and `. .venv/bin/activate; socialcredit run` must share compiled kernels
    makefile = (ROOT / "Makefile").read_text()
    assert "NUMBA_CACHE_DIR" not in makefile.replace("# ", "")


def test_is_compiled_reads_the_on_disk_cache(tmp_path: Path) -> None:
    source = tmp_path / "sc_jit_probe.py"
    source.write_text("from numba import njit\n\n@njit(cache=True)\ndef twice(x):\n"
                      "    return 2 * x\n")
    spec = importlib.util.spec_from_file_location("sc_jit_probe", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sc_jit_probe"] = module
    try:
        spec.loader.exec_module(module)
        assert not jitcache.is_compiled(module.twice)
        assert module.twice(21) == 42
        assert jitcache.is_compiled(module.twice)
        # a new process (here: a fresh dispatcher of the same source) finds it on disk
        spec.loader.exec_module(module)
        assert not module.twice.overloads
        assert jitcache.is_compiled(module.twice)
    finally:
        sys.modules.pop("sc_jit_probe", None)


def test_the_run_says_when_it_compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socialcredit.run as run_module

    notices: list[str] = []
    days: list[int] = []
    monkeypatch.setattr(run_module, "cpu_kernels_compiled", lambda: False)
    run_module.simulate("default", out=tmp_path / "r", citizens=300, days=3,
                        progress=lambda done, total: days.append(done), notice=notices.append)
    assert notices == [run_module.COMPILING, ""]
    assert "compiling the day kernel" in run_module.COMPILING
    notices.clear()
    monkeypatch.setattr(run_module, "cpu_kernels_compiled", lambda: True)
    run_module.simulate("default", out=tmp_path / "s", citizens=300, days=3,
                        notice=notices.append)
    assert notices == []


def test_the_kernels_of_this_process_count_as_compiled(tmp_path: Path) -> None:
    import socialcredit.run as run_module

    run_module.simulate("default", out=tmp_path / "r", citizens=300, days=2)
    assert run_module.cpu_kernels_compiled()
