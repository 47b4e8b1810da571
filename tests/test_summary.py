"""The end-of-run summary: headline counts, and for a scaled scenario what each stands for in
the real population, in the unit it counts (people, businesses, acts, records, decisions)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from socialcredit.scenario import Scenario
from socialcredit.summary import estimates, stands_for, summarize

CITIZENS = 800
DAYS = 10
BURN_IN = 200  # time for the lists to fill


@pytest.fixture(scope="module")
def china() -> Scenario:
    return Scenario.load("china").model_copy(update={"burn_in_days": BURN_IN})


@pytest.fixture(scope="module")
def scaled_run(tmp_path_factory: pytest.TempPathFactory, china: Scenario) -> Path:
    from socialcredit.run import simulate

    out = tmp_path_factory.mktemp("summary") / "china"
    return simulate(china, out=out, citizens=CITIZENS, days=DAYS, threads=1)


def printed(s: dict[str, Any]) -> list[str]:
    from rich.console import Console

    from socialcredit.commands.run import print_summary

    console = Console(record=True, width=200)
    print_summary(s, console)
    return console.export_text().splitlines()


def row(lines: list[str], what: str) -> str:
    """The count cell of the table's row ``what``."""
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if "│" in line]
    found = [c[1] for c in cells if len(c) == 2 and c[0] == what]
    assert len(found) == 1, (what, lines)
    return found[0]


def test_a_scaled_run_stands_for_the_census_population(scaled_run: Path,
                                                       china: Scenario) -> None:
    s = summarize(scaled_run)
    assert s["scale"] != 1.0 and s["citizens"] < 1000
    people = sum(r.population or 0 for r in china.regions)
    businesses = math.fsum((r.population or 0) * r.businesses_per_1000 / 1000
                           for r in china.regions)
    assert people == 1_409_778_724
    assert s["stands_for"]["people"] == pytest.approx(people, rel=1e-12)
    assert s["stands_for"]["businesses"] == pytest.approx(businesses, rel=1e-12)


def test_each_count_is_scaled_in_its_own_unit(scaled_run: Path) -> None:
    s = summarize(scaled_run)
    real = estimates(s)
    people, firms = s["stands_for"]["people"], s["stands_for"]["businesses"]
    per_citizen, per_business = people / s["citizens"], firms / s["businesses"]
    assert real["citizens"] == (pytest.approx(people), "people")
    assert real["businesses"] == (pytest.approx(firms), "businesses")
    assert s["acts"] > 0 and s["records"] > 0 and s["decisions"] > 0  # the run did something
    for key, unit in (("acts", "acts"), ("records", "records"), ("decisions", "decisions"),
                      ("denied", "decisions"), ("fast_tracked", "decisions")):
        assert real[key] == (pytest.approx(s[key] * per_citizen), unit), key
    kinds = s["list_subjects"]
    assert kinds["judgment_debtors"] == "citizen"
    assert kinds["judgment_debtor_firms"] == "business"
    assert set(kinds) == set(s["lists"]) and s["lists"]
    for name, n in s["lists"].items():
        if kinds[name] == "citizen":
            assert real[f"list:{name}"] == (pytest.approx(n * per_citizen), "people"), name
        else:
            assert real[f"list:{name}"] == (pytest.approx(n * per_business), "businesses"), name


def test_the_printed_summary_labels_each_estimate(scaled_run: Path) -> None:
    s = summarize(scaled_run)
    real = estimates(s)
    lines = printed(s)
    expected = {"citizens": "citizens", "businesses": "businesses", "acts": "acts",
                "records": "records", "service decisions": "decisions", "denied": "denied",
                "fast-tracked": "fast_tracked"}  # the printed row: its summary key
    for what, key in expected.items():
        value, unit = real[key]
        assert row(lines, what) == f"{s[key]:,}  (≈ {value:,.0f} {unit})", what
    for name in s["lists"]:
        value, unit = real[f"list:{name}"]
        n = s["lists"][name]
        assert row(lines, f"on list {name} (last day)") == f"{n:,}  (≈ {value:,.0f} {unit})"
    # "people" labels citizens and the members of citizens' lists, nothing else
    of_people = ("citizens ", *(f"on list {name} " for name, kind in s["list_subjects"].items()
                                if kind == "citizen"))
    people_rows = [line.strip("│ ") for line in lines if " people)" in line]
    assert len(people_rows) == len(of_people), people_rows
    assert all(line.startswith(of_people) for line in people_rows), people_rows


def test_a_run_written_before_list_subjects_reads_them_from_daily(scaled_run: Path,
                                                                  tmp_path: Path) -> None:
    copy = tmp_path / "old"
    shutil.copytree(scaled_run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    named = manifest["policy"].pop("list_subjects")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    s = summarize(copy)
    on = {name for name, n in s["lists"].items() if n}
    assert on, s["lists"]
    assert s["list_subjects"] == {name: named[name] for name in on}
    empty = [name for name, n in s["lists"].items() if not n]
    for name in empty:
        assert estimates(s)[f"list:{name}"] == (0.0, "subjects")


def test_stands_for_without_a_scenario_divides_by_scale() -> None:
    m = {"population": {"citizens": 1000, "businesses": 30, "scale": 0.001}}
    assert stands_for(m) == {"people": pytest.approx(1e6), "businesses": pytest.approx(3e4)}


def test_an_unscaled_run_prints_no_estimates(tmp_path: Path) -> None:
    from socialcredit.run import simulate

    # each simulated citizen one person
    sc = Scenario.load("default").rescaled(CITIZENS).model_copy(update={"scale": 1.0})
    run = simulate(sc, out=tmp_path / "run", days=DAYS, threads=1)
    s = summarize(run)
    assert s["scale"] == 1.0
    assert estimates(s) == {}
    lines = printed(s)
    assert row(lines, "citizens") == f"{CITIZENS:,}"
    assert not [line for line in lines if "≈" in line]
