"""``socialcredit report``: one self-contained HTML page, opened in headless Chromium.

The browser test needs Debian's ``chromium`` (``apt-get install chromium``, as root) and the
``playwright`` package; without them it is skipped with a message, except under ``CI=true``
where a missing browser is a failure (DESIGN 9)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from cli_support import invoke
from socialcredit.analysis.report import build_report, write_report
from socialcredit.run import simulate
from socialcredit.scenario import Scenario

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def scenario() -> Scenario:
    d = Scenario.load("unified").to_dict()
    d.update(name="report", start="2018-08-01", days=75, burn_in_days=45)
    d["behaviour"]["channels"] = {"social_media": {"false_per_year": 1.0, "coverage": 0.8}}
    d["behaviour"]["acts"] = {"criticise_government": {"rate_per_year": 4.0}}
    return Scenario.from_dict(d)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    sc = scenario()
    return {"ledger": simulate(sc, out=root / "ledger", citizens=4000, ledger=True),
            "plain": simulate(sc, out=root / "plain", citizens=4000)}


@pytest.fixture(scope="module")
def report(runs: dict[str, Path]) -> Path:
    return write_report(runs["ledger"])


def test_report_is_self_contained(report: Path, runs: dict[str, Path]) -> None:
    assert report == runs["ledger"] / "report.html"
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # plotly.js is inline: no script or stylesheet from the network
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=[\"']https?:", text)
    # (plotly.js names a CDN only for map outlines, which the report does not draw; the
    # browser test checks that opening the page requests nothing from the network)
    assert len(text) > 3_000_000 and "Plotly.newPlot" in text
    for heading in ("The scenario and the policy in brief", "Rights audit of the policy",
                    "Scores over time", "Grade shares", "Regions side by side",
                    "Lists: sizes, entries and exits",
                    "Decisions by service and outcome", "Wrongful sanctions and their channels",
                    "Rules that moved most points", "Who is punished: disparities by band",
                    "Behaviour under pressure"):
        assert heading in text, heading
    assert "ICCPR 19" in text and "unified.score.criticise_government" in text
    # the run directory holds no new Parquet and no temporary file
    assert sorted(p.name for p in runs["ledger"].iterdir() if p.is_file()) == [
        "manifest.json", "report.html", "run.duckdb"]


def test_the_provinces_report_shows_the_regions_side_by_side(tmp_path: Path) -> None:
    """The national baseline with three city pilots in their provinces: one row per region
    with its policy layer, and lists and measures by region that add up to the census."""
    from socialcredit.analysis.metrics import region_comparison
    from socialcredit.store import Run

    d = Scenario.load("provinces").to_dict()
    d.update(days=90, burn_in_days=60)
    path = simulate(Scenario.from_dict(d), out=tmp_path / "provinces", citizens=4800)
    cmp = region_comparison(path)
    layers = {r["region"]: r["extension"] for r in cmp["regions"]}
    assert layers == {"shandong": None, "rongcheng": "rongcheng", "jiangsu": None,
                      "suqian": "suqian", "zhejiang": None, "hangzhou": "hangzhou"}
    scored = {r["region"]: r["scored_share"] for r in cmp["regions"]}
    assert all(scored[p] == 0 for p in ("shandong", "jiangsu", "zhejiang"))
    assert all(scored[c] > 0 for c in ("rongcheng", "suqian", "hangzhou"))
    with Run.open(path) as run:
        census = run.manifest["census"]
    assert sum(r["requests"] for r in cmp["regions"]) == census["requests"]
    assert cmp["measures"]
    for m in cmp["measures"]:
        assert sum(v["fired"] for v in m["by_region"].values()) == census["measure_fired"][m["measure"]]
        if m["measure"].startswith(("rongcheng_", "hangzhou_")):
            home = m["measure"].split("_")[0]
            assert all(v["fired"] == 0 for r, v in m["by_region"].items() if r != home)
    for x in cmp["lists"]:
        assert sum(v["entries"] for v in x["by_region"].values()) == census["list_enter"][x["list"]]
    text = write_report(path).read_text(encoding="utf-8")
    section = text[text.index("<h2>Regions side by side</h2>"):]
    section = section[:section.index("</section>")]
    assert "Lists by region" in section and "Measures by region" in section
    for region in layers:
        assert f"<td>{region}</td>" in section, region


def test_report_without_a_ledger(runs: dict[str, Path], tmp_path: Path) -> None:
    out = write_report(runs["plain"], tmp_path / "deep" / "r.html")
    text = out.read_text(encoding="utf-8")
    assert "without a ledger" in text and "needs a run with --ledger" in text
    assert "Plotly.newPlot" in text
    assert build_report(runs["plain"]).count("Plotly.newPlot") == text.count("Plotly.newPlot")


def cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return invoke(args, monkeypatch, capsys, columns=160)


def test_cli(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "page.html"
    code, stdout, err = cli(["report", str(runs["plain"]), "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    assert out.is_file() and "report written" in stdout
    code, stdout, err = cli(["report", str(tmp_path / "missing")], monkeypatch, capsys)
    assert code == 2 and "there is no run at" in err and "Traceback" not in stdout + err


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium executable, checked before any run is made for the browser test."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        exe = None
    if exe is None:
        message = "headless Chromium is not available (apt-get install chromium; pip install playwright)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return exe


@pytest.mark.browser
def test_report_opens_in_chromium(chromium: str, report: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    remote: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:"))
                    else remote.append(r.url))
            page.goto(report.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot').length > 0 && "
                "[...document.querySelectorAll('.js-plotly-plot')]"
                ".every(d => d.querySelector('.main-svg'))", timeout=30_000)
            plots = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
            # every plot drew something: bars, lines, areas or a heatmap
            drawn = page.evaluate(
                "[...document.querySelectorAll('.js-plotly-plot')].map(d => "
                "d.querySelectorAll('.bars path, .scatterlayer path.js-line, "
                ".scatterlayer path.js-fill, .hm image, .heatmaplayer image').length)")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert remote == [], "the report must open offline"
    assert plots >= 7
    assert all(n > 0 for n in drawn), drawn
    assert shot.stat().st_size > 100_000
