"""The explorer end to end, in headless Chromium through Playwright (DESIGN 9: Debian's chromium).

The explorer runs in a uvicorn server on a free local port; the browser opens the runs page,
a run's overview (its charts drawn by the local Plotly.js), looks a subject up, reads its
timeline, browses a list, the policy and a comparison, and takes a screenshot of each page
(into ``$SOCIALCREDIT_SCREENSHOTS`` when set, else a temporary folder). The pages must raise
no JavaScript error and break no rule of the content security policy.

When chromium or Playwright is missing the tests skip with a message; under ``CI=true`` they
fail instead, after trying to install chromium with apt-get when running as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_web_api import CITIZENS, make_runs

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _missing(message: str) -> None:
    if _in_ci():
        pytest.fail(f"{message} (CI=true: browser tests must run)")
    pytest.skip(message)


def _install_chromium() -> None:
    """apt-get install chromium, when running as root (the CI image)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=False, env=env, capture_output=True,
                   timeout=600)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                   check=False, env=env, capture_output=True, timeout=1200)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None and _in_ci():
        _install_chromium()
        path = shutil.which("chromium")
    if path is None:
        _missing("chromium is not installed (as root: apt-get install -y chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from socialcredit.web import create_app

    app = create_app(make_runs(tmp_path_factory.mktemp("web")))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the explorer's server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("SOCIALCREDIT_SCREENSHOTS")
    folder = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  base_url=server)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
          if m.type == "error" else None)
    pg.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    pg.problems = problems
    yield pg
    context.close()


def _ready(pg: Any) -> None:
    pg.wait_for_selector("body[data-ready='1']", state="attached", timeout=30_000)


def test_overview_lookup_and_timeline(page: Any, shots: Path) -> None:
    page.goto("/")
    _ready(page)
    assert page.locator("#runs a.run-link").count() == 3
    page.screenshot(path=str(shots / "runs.png"), full_page=True)

    page.click("a.run-link:text-is('base')")
    page.wait_for_url("**/runs/base")
    _ready(page)
    # every chart is drawn by Plotly.js (served locally) or says why it is empty
    for name in ("scores", "grades", "lists", "decisions", "wrongful", "disparity"):
        fig = page.locator(f"#fig-{name}")
        assert fig.locator(".main-svg").count() > 0 or "nothing to show" in fig.inner_text()
    assert page.locator("#fig-lists .main-svg").count() > 0
    assert "citizens" in page.locator("#headline").inner_text()
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    # filters: a region and a group redraw the charts and land in the address
    page.select_option("#f-region", "rongcheng")
    page.select_option("#f-group", "income:2")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**region=rongcheng**")
    _ready(page)
    assert "rongcheng" in page.locator("#fig-grades").inner_text()

    # look a subject up and read its timeline
    page.fill("#f-subject", "4")
    page.click("#lookup button")
    page.wait_for_url("**/runs/base/subjects/4")
    _ready(page)
    assert page.locator("h1").inner_text().startswith("Citizen 4")
    assert page.locator("#attributes").inner_text().strip()
    page.check("#show-grants")
    rows = page.locator("table.timeline tbody tr")
    assert rows.count() > 0
    first = rows.first.locator("td").first.inner_text()
    assert first.startswith("2018-")
    page.screenshot(path=str(shots / "subject.png"), full_page=True)
    assert page.problems == []


def test_a_listed_subject_and_its_list(page: Any, shots: Path) -> None:
    page.goto("/runs/base/lists?list=honour_roll")
    _ready(page)
    members = page.locator("#members-table tbody tr")
    assert members.count() > 0
    page.screenshot(path=str(shots / "lists.png"), full_page=True)
    link = members.first.locator("a")
    sid = int(link.inner_text())
    link.click()
    page.wait_for_url(f"**/subjects/{sid}")
    _ready(page)
    text = page.locator("#content").inner_text()
    assert "honour roll" in text
    assert page.problems == []


def test_a_business_by_its_code(page: Any, server: str) -> None:
    import httpx

    code = httpx.get(f"{server}/api/runs/base/subjects/{CITIZENS + 2}").json()["uscc"]
    page.goto("/runs/base")
    _ready(page)
    page.fill("#f-subject", code)
    page.click("#lookup button")
    _ready(page)
    assert page.locator("h1").inner_text() == f"Business {CITIZENS + 2} · {code}"
    page.click("text=replayed from the seed")
    _ready(page)
    assert page.locator("a.here", has_text="replayed").count() == 1
    assert page.problems == []


def test_policy_and_compare_pages(page: Any, shots: Path) -> None:
    page.goto("/runs/base/policy")
    _ready(page)
    assert page.locator("h2#audit").count() == 1
    assert page.locator("table.rules tbody tr").count() > 10
    page.screenshot(path=str(shots / "policy.png"), full_page=False)
    page.goto("/compare?a=base&b=reform")
    _ready(page)
    assert page.locator("#fig-transition .main-svg").count() > 0
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    assert page.problems == []


def test_unknown_subject_shows_a_plain_404(page: Any) -> None:
    response = page.goto("/runs/base/subjects/999999999")
    assert response is not None and response.status == 404
    assert "has no subject" in page.locator("#message").inner_text()
    page.problems.clear()  # the 404 itself is logged by the console


def test_the_api_page_lists_the_operations_offline(page: Any, server: str, shots: Path) -> None:
    # Swagger UI from the package (issue 15): nothing from another host, nothing the
    # content policy blocks, and every documented operation on the page
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    page.goto("/api/docs")
    _ready(page)
    text = page.locator("#ops").inner_text()
    for path in ("/api/runs", "/api/runs/{run}", "/api/runs/{run}/subjects/{subject}"):
        assert f"GET {path}\n" in text + "\n"
    assert page.locator("section.operation").count() >= 8
    assert page.locator("section.schema#schema-CreditFile").count() == 1
    # try one: the manifest of a run, fetched from the page
    op = page.locator("section.operation", has=page.locator("code", has_text="/api/runs/{run}")).first
    op.locator("summary").click()
    op.locator("input[data-name='run']").fill("base")
    op.locator("button[type=submit]").click()
    op.locator("pre.try-out", has_text="→ 200").wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "api-docs.png"), full_page=False)
    assert outside == [] and page.problems == []


def test_slow_pages_say_they_are_loading(page: Any) -> None:
    seen: list[str] = []

    def slow(route: Any) -> None:
        seen.append(page.locator("#loading").inner_text())
        route.continue_()

    page.route("**/api/runs/base/overview*", slow)
    page.route("**/api/compare/base/reform*", slow)
    page.goto("/runs/base")
    _ready(page)
    page.goto("/compare?a=base&b=reform")
    _ready(page)
    assert any("Loading the charts" in s for s in seen), seen
    assert any("Comparing the two runs" in s for s in seen), seen
    assert page.locator("#loading").is_hidden()
    assert page.problems == []


def test_every_table_view_offers_downloads(page: Any) -> None:
    page.goto("/runs/base/lists?list=honour_roll")
    _ready(page)
    link = page.locator("#downloads a", has_text="CSV").first
    href = link.get_attribute("href")
    assert href is not None and "/members.csv" in href
    response = page.request.get(href)
    assert response.status == 200 and response.text().startswith("subject_id,")
    for path in ("/runs/base", "/runs/base/subjects/4", "/compare?a=base&b=reform"):
        page.goto(path)
        _ready(page)
        assert page.locator("#downloads a", has_text="Parquet").count() >= 1, path
    assert page.problems == []


def test_a_run_without_ledger_links_to_no_ledger(page: Any) -> None:
    page.goto("/runs/sweep~plain/subjects/17")
    _ready(page)
    assert page.locator("a[href='?source=ledger']").count() == 0
    assert "made without --ledger" in page.locator("#no-ledger").inner_text()
    assert page.problems == []
