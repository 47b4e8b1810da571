"""The explorer's JSON API (``socialcredit serve``), through FastAPI's test client.

Three tiny runs are made once per session and shared with ``test_web_fuzz`` and
``test_web_browser`` (through :func:`make_runs`): ``base`` and ``reform`` (the same population
and seed, the second with a reform: comparable subject by subject), both with the ledger, and
``plain`` without it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

CITIZENS = 4000
DAYS = 60
_RUNS: dict[str, Path] = {}
_LOCK = threading.Lock()


def make_runs(base: Path) -> Path:
    """The runs folder of the web tests (made once per process; later calls reuse it)."""
    with _LOCK:
        if "folder" in _RUNS:
            return _RUNS["folder"]
        from socialcredit.run import simulate
        from socialcredit.scenario import Scenario

        folder = base / "runs"
        folder.mkdir(parents=True)
        kw: dict[str, Any] = {"citizens": CITIZENS, "days": DAYS, "threads": 1}
        simulate("default", out=folder / "base", ledger=True, **kw)
        reform = Scenario.load("default").model_copy(update={"reforms": ["list_term_one_year"]})
        simulate(reform, out=folder / "reform", ledger=True, **kw)
        simulate("default", out=folder / "sweep" / "plain", ledger=False, **kw)
        _RUNS["folder"] = folder
        return folder


@pytest.fixture(scope="session")
def runs_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_runs(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="session")
def app(runs_folder: Path) -> Any:
    from socialcredit.web import create_app

    return create_app(runs_folder)


@pytest.fixture(scope="session")
def client(app: Any) -> Any:
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def base(runs_folder: Path) -> Any:
    from socialcredit.store import Run

    return Run.open(runs_folder / "base")


def _one(run: Any, query: str) -> int:
    return int(run.sql(query).column(0)[0].as_py())


def _plain(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    text = body["detail"]
    assert text and "\n" not in text and "Traceback" not in text
    return text


# --- runs ------------------------------------------------------------------------------------


def test_runs_lists_every_run_under_the_folder(client: Any) -> None:
    r = client.get("/api/runs")
    assert r.status_code == 200
    runs = {x["id"]: x for x in r.json()}
    assert set(runs) == {"base", "reform", "sweep~plain"}
    b = runs["base"]
    assert b["scenario"] == "default" and b["ledger"] is True
    assert b["citizens"] == CITIZENS and b["days"] == DAYS
    assert b["start"] == "2018-01-01" and b["end"] == "2018-03-01"
    assert b["headline"]["decisions"] > 0 and "lists" in b["headline"]
    assert runs["reform"]["reforms"] == ["list_term_one_year"]
    assert runs["sweep~plain"]["ledger"] is False


def test_run_gives_manifest_and_headline_figures(client: Any, base: Any) -> None:
    r = client.get("/api/runs/base")
    assert r.status_code == 200
    body = r.json()
    assert body["manifest"] == base.manifest
    assert body["headline"]["citizens"] == CITIZENS
    assert body["tables"] == base.tables()
    assert body["snapshot_days"]


def test_openapi_describes_the_contract(client: Any) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for p in ("/api/runs", "/api/runs/{run}", "/api/runs/{run}/subjects/{subject}",
              "/api/runs/{run}/overview", "/api/runs/{run}/lists/{name}",
              "/api/runs/{run}/policy", "/api/compare/{run_a}/{run_b}"):
        assert set(paths[p]) == {"get"}, p
    assert "404" in paths["/api/runs/{run}/subjects/{subject}"]["get"]["responses"]
    assert not any(p.startswith("/static") or not p.startswith("/api") for p in paths)


# --- a subject's credit file ------------------------------------------------------------------


def _subject_with(run: Any, table: str, where: str = "TRUE") -> int:
    return _one(run, f"SELECT subject_id FROM {table} WHERE {where} "
                     "GROUP BY subject_id ORDER BY count(*) DESC, subject_id LIMIT 1")


def test_credit_file_tells_the_ledger(client: Any, base: Any) -> None:
    sid = _subject_with(base, "ledger")
    r = client.get(f"/api/runs/base/subjects/{sid}")
    assert r.status_code == 200
    f = r.json()
    assert f["subject_id"] == sid and f["source"] == "ledger" and f["run"] == "base"
    events = [e for d in f["days"] for e in d["events"]]
    for table, kind in (("records", "record"), ("ledger", "points"),
                        ("list_events", "list"), ("decisions", "decision")):
        n = _one(base, f"SELECT count(*) FROM {table} WHERE subject_id = {sid}")
        assert sum(1 for e in events if e["type"] == kind) == n, table
    scores = base.sql(f"SELECT score FROM ledger WHERE subject_id = {sid}").column(0).to_pylist()
    assert scores, "the subject has ledger rows"
    assert [e["score"] for e in events if e["type"] == "points"] == scores
    refs = {r["name"]: r["reference"] for r in base.manifest["policy"]["rules"]}
    referenced = [e for e in events if e["type"] == "points" and e["rule"] in refs]
    assert referenced, "the subject's points name rules of the manifest"
    for e in referenced:
        assert e["reference"] == refs[e["rule"]]
    days = [d["day"] for d in f["days"]]
    assert days and days == sorted(days) and all("2018-01-01" <= d <= "2018-03-01" for d in days)
    # the score at the end: the last snapshot's (taken on the last day), which is the score
    # after the subject's last ledger row
    last = base.sql(f"SELECT day, score FROM snapshots WHERE subject_id = {sid} "
                    "ORDER BY day DESC LIMIT 1").to_pylist()
    assert last and str(last[0]["day"]) == base.manifest["calendar"]["end"]
    assert f["at_end"]["score"] == last[0]["score"] == scores[-1]
    assert f["attributes"]["subject_id"] == sid and f["attributes"]["region"]
    assert f["summary"]["points_changes"] == len(scores)


def test_business_by_code_and_by_id(client: Any, base: Any) -> None:
    sid = _subject_with(base, "list_events", f"subject_id >= {CITIZENS}")
    by_id = client.get(f"/api/runs/base/subjects/{sid}").json()
    assert by_id["kind"] == "business"
    code = by_id["uscc"]
    assert isinstance(code, str) and len(code) == 18
    for text in (code, code.lower()):
        by_code = client.get(f"/api/runs/base/subjects/{text}")
        assert by_code.status_code == 200
        assert by_code.json()["subject_id"] == sid
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert "code" in _plain(client.get(f"/api/runs/base/subjects/{wrong}"), 404)


def test_codes_are_read_as_on_the_command_line(client: Any, app: Any) -> None:
    """The explorer and ``explain`` share one parser: a code of digits only is a code, and a
    well-formed code of another region is refused."""
    from socialcredit.uscc import code_for

    handle = app.state.catalog.get("base")
    codes = {b: handle.uscc(b) for b in range(CITIZENS, CITIZENS + handle.n_businesses)}
    sid = next(b for b, c in codes.items() if c and c.isdigit())
    r = client.get(f"/api/runs/base/subjects/{codes[sid]}")
    assert r.status_code == 200 and r.json()["subject_id"] == sid
    region = int(codes[sid][2:8])
    other = code_for(sid, (region + 1) % 1_000_000)
    text = _plain(client.get(f"/api/runs/base/subjects/{other}"), 404)
    assert text.startswith("no business of the run base has the code") and "region part" in text


def test_the_ledger_story_matches_the_replay(client: Any, base: Any) -> None:
    """The story read from the ledger and the one replayed from the seed agree, event for
    event, on everything the ledger holds."""
    sid = _subject_with(base, "list_events", f"subject_id < {CITIZENS}")
    ledger = client.get(f"/api/runs/base/subjects/{sid}?source=ledger").json()
    replay = client.get(f"/api/runs/base/subjects/{sid}?source=replay")
    assert replay.status_code == 200, replay.text
    replay = replay.json()
    assert replay["source"] == "replay" and replay["subject_id"] == sid
    keys = {"record": ("act", "channel", "true_record", "delayed"),
            "points": ("rule", "points", "score", "false_record"),
            "list": ("list", "event", "reason", "false_caused"),
            "decision": ("service", "outcome", "measure", "wrongful")}

    def held(story: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted((d["day"], e["type"], *(str(e.get(k)) for k in keys[e["type"]]))
                      for d in story["days"] for e in d["events"] if e["type"] in keys)

    assert held(ledger) == held(replay)
    assert any(e["type"] == "act" for d in replay["days"] for e in d["events"])
    assert ledger["at_end"]["lists"] == replay["at_end"]["lists"]


def test_index_and_parquet_lookups_agree(base: Any) -> None:
    from socialcredit.web.index import SubjectIndex

    built = SubjectIndex(base, background=False)
    assert built.ready
    scan = SubjectIndex(base, build=False)  # reads the Parquet files
    cur_b, cur_s = built.cursor(), scan.cursor()
    try:
        assert set(built.tables) >= {"records", "ledger", "list_events", "decisions"}
        for sid in (0, 1, _subject_with(base, "ledger"), _subject_with(base, "decisions"),
                    CITIZENS + 3):
            for table in built.tables:
                a = built.rows(cur_b, table, sid, 10_000)
                b = scan.rows(cur_s, table, sid, 10_000)
                assert a == b, (table, sid)
    finally:
        cur_b.close()
        cur_s.close()
        built.close()
        scan.close()


def test_index_builds_while_a_request_writes(base: Any, monkeypatch: Any) -> None:
    """A checkpoint fails while another transaction writes to the index's database; the
    index is built anyway (its tables left uncompressed) and answers as the Parquet files."""
    import socialcredit.web.index as index_module
    from socialcredit.web.index import SubjectIndex

    monkeypatch.setattr(index_module, "CHECKPOINT_TRIES", 2)
    monkeypatch.setattr(index_module, "CHECKPOINT_PAUSE", 0.001)
    built = SubjectIndex(base, build=False)
    busy = built.cursor()
    copy = built._copy

    def copy_while_busy(cur: Any, name: str) -> None:
        if not busy.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'busy'"
                            ).fetchone()[0]:
            busy.execute("BEGIN TRANSACTION")
            busy.execute("CREATE TABLE idx.busy AS SELECT 1 AS x")
        copy(cur, name)

    monkeypatch.setattr(built, "_copy", copy_while_busy)
    try:
        built._build()
        assert built.ready and built.error is None
        scan = SubjectIndex(base, build=False)
        cur_b, cur_s = built.cursor(), scan.cursor()
        sid = _subject_with(base, "decisions")
        assert set(built.tables) >= {"records", "ledger", "list_events", "decisions"}
        for table in built.tables:
            assert built.has(table)
            assert built.rows(cur_b, table, sid, 10_000) == scan.rows(cur_s, table, sid, 10_000)
        cur_b.close()
        cur_s.close()
        scan.close()
    finally:
        busy.execute("ROLLBACK")
        busy.close()
        built.close()


def test_a_run_without_ledger_is_replayed(client: Any) -> None:
    r = client.get("/api/runs/sweep~plain/subjects/17")
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["source"] == "replay" and f["subject_id"] == 17
    assert f["ledger"] is False  # the page links to no ledger (issue 15)
    assert client.get("/api/runs/base/subjects/17").json()["ledger"] is True
    assert "ledger" in _plain(client.get("/api/runs/sweep~plain/subjects/17?source=ledger"),
                              404)


# --- overview ---------------------------------------------------------------------------------


FIGURES = {"scores", "grades", "lists", "decisions", "throttled", "wrongful", "disparity"}


def test_overview_has_every_chart(client: Any) -> None:
    body = client.get("/api/runs/base/overview").json()
    assert set(body["figures"]) == FIGURES
    for name, fig in body["figures"].items():
        assert set(fig) == {"data", "layout"}, name
        assert fig["layout"]["title"]["text"], name
    assert body["figures"]["lists"]["data"] and body["figures"]["decisions"]["data"]
    assert body["filters"] == {"region": None, "group": "all", "start": "2018-01-01",
                               "end": "2018-03-01"}
    assert {r["group"] for r in body["disparity"]} >= {"income:0", "urban", "rural"}


def test_overview_shows_a_run_against_its_published_figures(client: Any,
                                                             tmp_path: Path) -> None:
    """The overview carries the validation table of ``socialcredit validate`` for a run of a
    scenario that a shipped target file names (issue 13), and nothing for the others."""
    from fastapi.testclient import TestClient

    from socialcredit.run import simulate
    from socialcredit.targets import load_targets, validate_run
    from socialcredit.web import create_app

    base = client.get("/api/runs/base/overview").json()
    assert base["validation"] == [] and base["validation_figure"] is None
    folder = tmp_path / "served"
    path = simulate("china", out=folder / "china", citizens=2000, days=80)
    with TestClient(create_app(folder)) as c:
        body = c.get("/api/runs/china/overview").json()
        again = c.get("/api/runs/china/overview?region=beijing").json()
    rows = body["validation"]
    want = validate_run(path, load_targets("china"))
    # the plot of model against published over time, as the report draws it: a line of the
    # model and the published points of every series that counts people or events
    fig = body["validation_figure"]
    assert again["validation_figure"] == fig  # the whole run, whatever the filters
    series = list(dict.fromkeys(w.series for w in want if w.unit != "share"))
    names = [t["name"] for t in fig["data"]]
    assert names == [f"{s} ({k})" for s in series for k in ("model", "published")]
    traces = {t["name"]: t for t in fig["data"]}
    listed = traces["listed (published)"]
    assert listed["x"] == [w.date for w in want if w.series == "listed"]
    assert listed["marker"]["symbol"] == ["circle-open" if w.holdout else "circle"
                                          for w in want if w.series == "listed"]
    model = traces["listed (model)"]
    assert model["x"][0] == "2013-10-01" and model["x"][-1] == "2013-12-19"
    assert all(v is not None for v in model["y"]) and model["y"] == sorted(model["y"])
    # a flow counted from 2018 has nothing yet in a run that ends in 2013
    assert set(traces["flights_blocked_2018_flow (model)"]["y"]) == {None}
    assert len(rows) == len(want) == len(load_targets("china").targets)
    assert [r["figure"] for r in rows] == [w.figure for w in want]
    first = rows[0]
    assert first["date"] == "2013-11-30" and first["use"] == "fitted"
    assert first["model"] == pytest.approx(want[0].model)
    assert {r["use"] for r in rows} == {"fitted", "held out"}


def test_charts_people_can_read(client: Any, base: Any) -> None:
    # issue 15, item 6: values on hover, one grade scale per legend group, a disparity heat
    # map whose cells carry the numbers and the counts behind them
    figs = client.get("/api/runs/base/overview").json()["figures"]
    for name in ("scores", "grades", "lists", "decisions", "disparity"):
        for trace in figs[name]["data"]:
            assert "%{y" in trace.get("hovertemplate", "") or trace["type"] == "heatmap", name
    scales = base.manifest["policy"]["grades"]
    grades = figs["grades"]["data"]
    assert grades
    for trace in grades:
        region = trace["legendgroup"]
        assert trace["x"] == [region] and trace["legendgrouptitle"]["text"] == region
        assert trace["name"] in scales[region]["citizen"]
    assert len({t["legendgroup"] for t in grades}) >= 2  # two scales, two groups
    (heat,) = figs["disparity"]["data"]
    assert heat["type"] == "heatmap" and len(heat["x"]) == 3
    body = client.get("/api/runs/base/overview").json()
    rows = body["disparity"]
    assert heat["y"] == [r["label"] for r in rows]
    for r, text in zip(rows, heat["text"], strict=True):
        assert text[2] == f"{r['listed_per_1000']:,.1f} ({r['listed']:,} of {r['subjects']:,})"
        if r["decisions"]:
            assert f"of {r['decisions']:,})" in text[0]


@pytest.mark.parametrize("params", [
    {"region": "rongcheng"}, {"group": "income:1"}, {"group": "business"},
    {"region": "hangzhou", "group": "urban", "start": "2018-01-15", "end": "2018-02-10"},
    {"region": "control", "group": "size:0"},
])
def test_overview_filters(client: Any, params: dict[str, str]) -> None:
    r = client.get("/api/runs/base/overview", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["filters"]["region"] == params.get("region")
    lists = body["figures"]["lists"]["data"]
    if "start" in params and lists:
        assert lists[0]["x"][0] == params["start"] and lists[0]["x"][-1] == params["end"]


def test_overview_without_ledger(client: Any) -> None:
    body = client.get("/api/runs/sweep~plain/overview").json()
    assert set(body["figures"]) == FIGURES
    assert any("mean" in n or "no ledger" in n for n in body["notes"])


@pytest.mark.parametrize("query,words", [
    ("region=atlantis", "no region"), ("group=left-handed", "no group"),
    ("start=2030-01-01", "no day"), ("end=2018-13-45", "not a date"),
    ("start=2018-02-01&end=2018-01-01", "empty"),
])
def test_overview_unknown_filters_are_404(client: Any, query: str, words: str) -> None:
    assert words in _plain(client.get(f"/api/runs/base/overview?{query}"), 404)


# --- lists ------------------------------------------------------------------------------------


def _listed(run: Any, name: str, day: str) -> int:
    return _one(run, f"SELECT sum(listed_{name}) FROM daily WHERE day = '{day}'")


@pytest.mark.parametrize("day", ["2018-01-01", "2018-01-20", "2018-02-14", "2018-03-01"])
def test_list_members_match_the_daily_counts(client: Any, base: Any, day: str) -> None:
    """Who is on a list on a day (from list events and snapshots) adds up to the day's
    count in ``daily`` (from the engine's counters), for every list."""
    summary = client.get(f"/api/runs/base/lists?date={day}").json()
    assert [e["list"] for e in summary["lists"]] == base.manifest["policy"]["lists"]
    for entry in summary["lists"]:
        name = entry["list"]
        assert entry["subjects"] == _listed(base, name, day)
        r = client.get(f"/api/runs/base/lists/{name}", params={"date": day, "page_size": 200})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == entry["subjects"], (name, day)
        ids = [m["subject_id"] for m in body["members"]]
        assert ids == sorted(set(ids))


def test_list_pages_and_filters(client: Any, base: Any) -> None:
    name = next(x["list"] for x in client.get("/api/runs/base/lists").json()["lists"]
                if x["subjects"] >= 3)
    total = client.get(f"/api/runs/base/lists/{name}").json()["total"]
    seen: list[int] = []
    page = 1
    while True:
        body = client.get(f"/api/runs/base/lists/{name}?page_size=2&page={page}").json()
        assert body["total"] == total and len(body["members"]) <= 2
        seen += [m["subject_id"] for m in body["members"]]
        if page >= body["pages"]:
            break
        page += 1
    assert len(seen) == total == len(set(seen))
    past = client.get(f"/api/runs/base/lists/{name}?page_size=2&page={page + 5}").json()
    assert past["members"] == [] and past["total"] == total
    by_kind = sum(client.get(f"/api/runs/base/lists/{name}?kind={k}").json()["total"]
                  for k in ("citizen", "business"))
    by_region = sum(client.get(f"/api/runs/base/lists/{name}?region={r}").json()["total"]
                    for r in ("rongcheng", "hangzhou", "control"))
    by_cause = sum(client.get(f"/api/runs/base/lists/{name}?false_caused={c}").json()["total"]
                   for c in ("true", "false"))
    assert by_kind == by_region == by_cause == total
    assert client.get(f"/api/runs/base/lists/{name}?page_size=201").status_code == 422
    assert client.get(f"/api/runs/base/lists/{name}?page=0").status_code == 422


def test_lists_need_the_ledger(client: Any) -> None:
    assert client.get("/api/runs/sweep~plain/lists").status_code == 200
    assert "ledger" in _plain(client.get("/api/runs/sweep~plain/lists/judgment_debtors"), 404)
    assert "no list" in _plain(client.get("/api/runs/base/lists/no_such_list"), 404)


# --- policy -----------------------------------------------------------------------------------


def test_policy_for_a_region_and_date(client: Any) -> None:
    body = client.get("/api/runs/base/policy?region=rongcheng&date=2018-02-01").json()
    assert body["region"] == "rongcheng" and body["date"] == "2018-02-01"
    assert body["layers"][0] == "national" and "rongcheng" in body["layers"]
    items = [i for s in body["sections"] for i in s["items"]]
    assert items and all("reference" in i for i in items)
    assert any(i["reference"] for i in items)
    assert isinstance(body["audit"], list) and body["audit"]
    assert {"rule", "rights", "severity", "why"} <= set(body["audit"][0])
    reform = client.get("/api/runs/reform/policy?region=control").json()
    assert "list_term_one_year" in " ".join(reform["layers"])
    assert "no region" in _plain(client.get("/api/runs/base/policy?region=mars"), 404)
    assert "no day" in _plain(client.get("/api/runs/base/policy?date=1999-01-01"), 404)


# --- compare ----------------------------------------------------------------------------------


def _last_grades(run: Any, region: str, kind: str) -> dict[int, str]:
    return {r["subject_id"]: r["grade"] for r in run.sql(
        "SELECT subject_id, grade FROM snapshots WHERE day = (SELECT max(day) FROM snapshots) "
        f"AND region = '{region}' AND kind = '{kind}'").to_pylist()}


def test_compare_two_runs(client: Any, base: Any, runs_folder: Path) -> None:
    from socialcredit.store import Run

    r = client.get("/api/compare/base/reform")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["comparable"] is True and body["analysis"]["seed"] == body["a"]["seed"]
    t = body["transition"]
    assert t is not None and t["subjects"] == CITIZENS
    assert len(t["matrix"]) == len(t["grades_a"]) and len(t["matrix"][0]) == len(t["grades_b"])
    assert sum(map(sum, t["matrix"])) == CITIZENS
    assert {h["figure"] for h in body["headline"]} >= {"decisions", "denied", "wrongful"}
    region = client.get("/api/compare/base/reform?region=rongcheng&kind=business").json()
    rt = region["transition"]
    # every business of rongcheng, counted by its last-day grade in either run
    ga = _last_grades(base, "rongcheng", "business")
    gb = _last_grades(Run.open(runs_folder / "reform"), "rongcheng", "business")
    n = next(r["businesses"] for r in base.manifest["population"]["regions"]
             if r["id"] == "rongcheng")
    assert n > 0 and len(ga) == len(gb) == n
    expected: dict[tuple[str, str], int] = {}
    for sid, grade in ga.items():
        expected[(grade, gb[sid])] = expected.get((grade, gb[sid]), 0) + 1
    assert rt is not None and rt["subjects"] == n
    cells = {(a, b): rt["matrix"][i][j] for i, a in enumerate(rt["grades_a"])
             for j, b in enumerate(rt["grades_b"]) if rt["matrix"][i][j]}
    assert cells == expected


def test_compare_needs_the_ledger_and_known_runs(client: Any) -> None:
    body = client.get("/api/compare/base/sweep~plain").json()
    assert body["transition"] is None and body["note"]
    assert "no run" in _plain(client.get("/api/compare/base/nope"), 404)


# --- never a 500, never outside the folder, never a write --------------------------------------


@pytest.mark.parametrize("path,words", [
    ("/api/runs/nope", "no run"),
    ("/api/runs/nope/subjects/1", "no run"),
    ("/api/runs/base/subjects/999999999", "no subject"),
    ("/api/runs/base/subjects/-1", "names no subject"),
    ("/api/runs/base/subjects/abc", "names no subject"),
    ("/api/runs/base/subjects/" + "9" * 40, "names no subject"),
    ("/api/runs/base/subjects/91371082000000001X", "code"),
    ("/api/runs/base/lists?date=2017-12-31", "no day"),
    ("/api/runs/base/lists/judgment_debtors?date=yesterday", "not a date"),
    ("/api/runs/base/lists/judgment_debtors?region=moon", "no region"),
    ("/api/nothing", "no page"),
])
def test_unknown_things_are_plain_404s(client: Any, path: str, words: str) -> None:
    assert words in _plain(client.get(path), 404)


TRAVERSALS = [
    "/api/runs/..", "/api/runs/..%2F..%2Fetc", "/api/runs/%2e%2e", "/api/runs/~",
    "/api/runs/base~..~..", "/api/runs/.base.partial", "/api/runs/%2Fetc%2Fpasswd",
    "/api/runs/base%00", "/runs/..%2F..%2F..%2Fetc%2Fpasswd", "/static/..%2Fapp.py",
    "/static/../web/app.py", "/static/%2e%2e%2fcatalog.py", "/static/templates%2Fpage.html",
    "/api/runs/outside", "/api/runs/outside/subjects/1", "/runs/outside",
    "/api/compare/base/..%2F..%2Ftmp",
]


def test_nothing_outside_the_runs_folder(runs_folder: Path, tmp_path: Path) -> None:
    """A symbolic link to a run outside the folder, a run being written (hidden), and any
    path that tries to climb out are all 404s."""
    from fastapi.testclient import TestClient

    from socialcredit.web import create_app

    folder = tmp_path / "served"
    folder.mkdir()
    os.symlink(runs_folder / "base", folder / "outside")
    os.symlink(runs_folder / "base", folder / "inside-link")  # resolved outside: refused too
    (folder / ".base.partial").mkdir()
    with TestClient(create_app(folder)) as c:
        assert c.get("/api/runs").json() == []
        for path in TRAVERSALS:
            r = c.get(path)
            assert r.status_code in (404, 405), (path, r.status_code)
            assert "root:" not in r.text and "def create_app" not in r.text


def test_broken_runs_are_not_server_errors(tmp_path: Path, runs_folder: Path) -> None:
    import json
    import shutil

    from fastapi.testclient import TestClient

    from socialcredit.web import create_app

    folder = tmp_path / "served"
    shutil.copytree(runs_folder / "base", folder / "good")
    (folder / "odd").mkdir()
    (folder / "odd" / "manifest.json").write_text(json.dumps({"format_version": 1,
                                                               "tables": {}}))
    (folder / "odd" / "run.duckdb").write_bytes(b"")
    (folder / "garbage").mkdir()
    (folder / "garbage" / "manifest.json").write_text("{not json")
    (folder / "garbage" / "run.duckdb").write_bytes(b"")
    with TestClient(create_app(folder)) as c:
        assert [r["id"] for r in c.get("/api/runs").json()] == ["good"]  # moved: still opens
        assert "cannot be" in _plain(c.get("/api/runs/odd"), 404)
        assert "cannot be" in _plain(c.get("/api/runs/garbage/overview"), 404)
        assert c.get("/runs/odd").status_code == 404
        assert c.get("/api/runs/good/subjects/3").status_code == 200


def test_traversal_from_a_real_folder(client: Any) -> None:
    for path in TRAVERSALS:
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "root:" not in r.text and "def create_app" not in r.text


def _fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            st = p.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def test_no_endpoint_writes(app: Any, client: Any, runs_folder: Path) -> None:
    from fastapi.routing import APIRoute

    before = _fingerprint(runs_folder)
    for route in app.routes:
        if isinstance(route, APIRoute):
            assert route.methods <= {"GET", "HEAD"}, route.path
    for method in ("post", "put", "patch", "delete"):
        for path in ("/api/runs", "/api/runs/base", "/api/runs/base/subjects/1", "/"):
            r = getattr(client, method)(path)
            assert r.status_code == 405, (method, path)
            assert "only reads" in r.json()["detail"] if path.startswith("/api") else True
    client.get("/api/runs/base/subjects/5")
    client.get("/api/runs/base/overview")
    client.get("/api/runs/base/lists/honour_roll")
    assert _fingerprint(runs_folder) == before


def test_query_time_is_bounded(base: Any) -> None:
    from socialcredit.web.queries import QueryTimeout, bounded

    with pytest.raises(QueryTimeout, match="longer than"), bounded(base.cursor(), 0.2) as cur:
        cur.execute("SELECT count(*) FROM range(100000000000) a WHERE a.range % 7 = 3").fetchall()


# --- pages, assets, the command ---------------------------------------------------------------


@pytest.mark.parametrize("path,page", [
    ("/", "runs"), ("/runs/base", "overview"), ("/runs/base/subjects/12", "subject"),
    ("/runs/base/lists", "lists"), ("/runs/base/policy", "policy"), ("/compare", "compare"),
])
def test_pages(client: Any, path: str, page: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f'data-page="{page}"' in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "http://" not in r.text and "https://" not in r.text  # no CDN


def test_unknown_pages_are_404_pages(client: Any) -> None:
    for path in ("/runs/nope", "/runs/base/subjects/abc", "/nowhere"):
        r = client.get(path)
        assert r.status_code == 404 and 'data-page="error"' in r.text


def test_assets_are_local(client: Any) -> None:
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")


def test_downloads_of_tables_lists_and_comparisons(client: Any, base: Any) -> None:
    # issue 15, item 3: every table view as CSV and Parquet, bounded, streamed from a file
    import io

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    r = client.get("/api/runs/base/tables/decisions.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="base-decisions.csv"' in r.headers["content-disposition"]
    assert r.headers["x-rows-limit"] == "1000000"
    tab = pacsv.read_csv(io.BytesIO(r.content))
    assert tab.num_rows == min(1_000_000, base.manifest["row_counts"]["decisions"])
    r = client.get("/api/runs/base/tables/ledger.parquet?subject=12")
    assert r.status_code == 200
    mine = pq.read_table(io.BytesIO(r.content))
    assert set(mine.column("subject_id").to_pylist()) <= {12}
    assert mine.num_rows == base.table("ledger", where="subject_id = 12").num_rows
    members = client.get("/api/runs/base/lists/honour_roll?page_size=200").json()
    r = client.get("/api/runs/base/lists/honour_roll/members.csv")
    assert r.status_code == 200
    whole = pacsv.read_csv(io.BytesIO(r.content))
    assert whole.num_rows == members["total"]
    assert {"subject_id", "since", "income_band", "age_band", "region"} <= set(whole.column_names)
    r = client.get("/api/compare/base/reform/changed.parquet")
    assert r.status_code == 200
    changed = pq.read_table(io.BytesIO(r.content))
    assert {"subject_id", "grade_a", "grade_b", "income_band"} <= set(changed.column_names)
    for path, words in (("/api/runs/base/tables/nope.csv", "no table"),
                        ("/api/runs/base/lists/nope/members.csv", "no list"),
                        ("/api/runs/sweep~plain/lists/honour_roll/members.csv", "ledger"),
                        ("/api/compare/base/sweep~plain/changed.csv", "ledger")):
        r = client.get(path)
        assert r.status_code == 404 and words in r.json()["detail"], (path, r.text)
    assert client.get("/api/runs/base/tables/daily.xlsx").status_code == 422


def test_the_api_page_is_served_from_the_package(client: Any) -> None:
    # issue 15: /api/docs was FastAPI's Swagger UI page, whose assets came from a CDN
    r = client.get("/api/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'data-page="api"' in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN
    assert "<script>" not in r.text  # no inline script: the content policy forbids it
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "pageApi" in client.get("/static/app.js").text


def test_serve_command_binds_to_localhost(runs_folder: Path, monkeypatch: Any) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from socialcredit.cli import app as cli
    from socialcredit.commands import serve

    calls: list[dict[str, Any]] = []
    bound: list[tuple[str, int]] = []

    def run(self: Any, sockets: Any = None) -> None:
        calls.append({"host": self.config.host, "port": self.config.port, "sockets": sockets})
        self.started = True

    monkeypatch.setattr(serve, "listen", lambda host, port: bound.append((host, port)) or [])
    monkeypatch.setattr(uvicorn.Server, "run", run)
    result = CliRunner().invoke(cli, ["serve", str(runs_folder)])
    assert result.exit_code == 0, result.output
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8000
    assert bound[0] == ("127.0.0.1", 8000) and calls[0]["sockets"] == []
    assert "3 runs" in result.output
    result = CliRunner().invoke(cli, ["serve", str(runs_folder), "--port", "9001"])
    assert calls[1]["port"] == 9001 and bound[1] == ("127.0.0.1", 9001)


def test_serve_refuses_a_taken_port_with_exit_2(runs_folder: Path) -> None:
    """As typed, in a process of its own: one sentence and exit code 2 (uvicorn would exit 3)."""
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "socialcredit", "serve", str(runs_folder),
                            "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr == (f"error: port {port} on 127.0.0.1 is already in use: stop what uses "
                        "it or choose another --port\n")


@pytest.mark.parametrize("host, words", [
    ("256.1.1.1", "--host 256.1.1.1 is not an address or a name of this machine"),
    ("no-such-host.invalid", "is not an address or a name of this machine"),
    ("192.0.2.1", "--host 192.0.2.1 is not an address of this machine"),  # TEST-NET-1
    (" ", "--host must name an address"),
])
def test_serve_refuses_a_bad_host_with_exit_2(runs_folder: Path, host: str, words: str,
                                             monkeypatch: Any, capsys: Any) -> None:
    import uvicorn

    from cli_support import invoke

    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: pytest.fail("served"))
    code, out, err = invoke(["serve", str(runs_folder), "--host", host, "--port", "18999"],
                            monkeypatch, capsys)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


def test_serve_command_refuses_a_missing_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "socialcredit", "serve", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: there is no folder")


# --- a fresh server, as `socialcredit serve` starts it ----------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=300) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode()


def test_replays_survive_concurrent_first_requests(runs_folder: Path, tmp_path: Path) -> None:
    """A fresh server (a process that has not imported numba yet): a subject of a run with a
    ledger (whose population is generated in the background), then one of a run without, then
    many first requests into numba at once — and every replay afterwards still answers."""
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "socialcredit", "serve", str(runs_folder),
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                              env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _ = _get(f"{url}/api/runs")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert status == 200
        # the sequence of the report: a ledger subject, then a replay
        assert _get(f"{url}/api/runs/base/subjects/{CITIZENS + 1}")[0] == 200
        status, body = _get(f"{url}/api/runs/sweep~plain/subjects/5")
        assert status == 200, body
        # first requests into numba at once: the other ledger run's population and codes,
        # replays, the policy audit, the comparison
        paths = [f"/api/runs/reform/subjects/{CITIZENS + 2}", "/api/runs/sweep~plain/subjects/6",
                 "/api/runs/reform/subjects/7?source=replay", "/api/runs/reform/policy",
                 "/api/compare/base/reform", f"/api/runs/reform/subjects/{CITIZENS + 3}"]
        with ThreadPoolExecutor(len(paths)) as pool:
            answers = list(pool.map(lambda p: (p, *_get(url + p)), paths))
        for path, status, body in answers:
            assert status == 200, (path, body)
        for sid in (8, 9):
            status, body = _get(f"{url}/api/runs/sweep~plain/subjects/{sid}")
            assert status == 200, body
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
