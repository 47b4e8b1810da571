import datetime as dt
import textwrap
from types import SimpleNamespace

import pytest

from socialcredit.errors import UserError
from socialcredit.scenario import Scenario, apportion, validate_against_catalogue

MINIMAL = """\
name: tiny
start: 2018-01-01
days: 10
seed: 7
policy: national
regions:
  - id: control
    name: Control
    citizens: 800
    businesses_per_1000: 30
    urban_share: 0.6
    income_shares: [0.25, 0.25, 0.25, 0.25]
    education_shares: [0.3, 0.4, 0.2, 0.1]
    age_shares: [0.2, 0.25, 0.35, 0.2]
    consent_share: 0.5
    household_mean: 2.6
"""


def write(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_every_shipped_scenario_loads():
    names = Scenario.shipped()
    assert {"default", "unified", "china"} <= set(names)
    for name in names:
        s = Scenario.load(name)
        assert s.name == name
        assert s.path is not None and s.path.name == f"{name}.yaml"
        assert all(r.citizens % 8 == 0 and r.citizens >= 8 for r in s.regions)
        assert s.assumptions, f"{name} lists no assumptions"


def test_default_scenario():
    s = Scenario.load("default")
    assert s.region_ids == ["rongcheng", "hangzhou", "control"]
    assert [r.extension for r in s.regions] == ["rongcheng", "hangzhou", None]
    assert s.citizens == 1_000_000
    assert s.start == dt.date(2018, 1, 1) and s.days == 1461 and s.burn_in_days == 365
    assert s.policy == "national"
    assert all(s.feedback.model_dump().values())
    assert s.recording.snapshot_every_days == 30
    assert s.behaviour.awareness == pytest.approx(0.11)
    # a year of burn-in and four reported years: the serious dishonesty list needs 3 years
    # on another (firms listed in the burn-in's first months reach it in 2020) and a year
    # before repair
    assert s.start_with_burn_in == dt.date(2017, 1, 1)


def test_provinces_layers_three_pilots_on_the_baseline_in_their_provinces():
    from socialcredit.catalogue import load_catalogue
    from socialcredit.scenario import validate_extensions

    s = Scenario.load("provinces")
    cat = load_catalogue()
    layers = {r.id: r.extension for r in s.regions}
    assert s.policy == "national" and s.reforms == []
    assert layers == {"shandong": None, "rongcheng": "rongcheng", "jiangsu": None,
                      "suqian": "suqian", "zhejiang": None, "hangzhou": "hangzhou"}
    validate_extensions(s)
    people = {r.id: r.population for r in s.regions}
    for city in ("rongcheng", "suqian", "hangzhou"):
        province = cat.region(city).parent
        assert province is not None and layers[province] is None
        # the province's region is the rest of it: nobody is counted twice
        assert people[city] == cat.region(city).population
        assert people[province] == cat.region(province).population - cat.region(city).population
    default = Scenario.load("default")
    assert (s.start, s.days, s.burn_in_days) == (default.start, default.days, default.burn_in_days)


def test_unified_runs_over_the_same_population():
    d, u = Scenario.load("default"), Scenario.load("unified")
    assert u.policy == "unified"
    assert u.seed == d.seed
    strip = {"extension"}
    assert [r.model_dump(exclude=strip) for r in u.regions] == [
        r.model_dump(exclude=strip) for r in d.regions
    ]
    assert u.behaviour == d.behaviour and u.feedback == d.feedback
    assert (u.start, u.days, u.burn_in_days) == (d.start, d.days, d.burn_in_days)


def test_china_scenario_matches_the_census():
    s = Scenario.load("china")
    assert len(s.regions) == 31
    assert s.policy == "national"
    assert sum(r.population for r in s.regions) == 1_409_778_724
    assert s.scale == pytest.approx(1e6 / 1.41e9)
    assert abs(s.citizens - 1_000_000) < 2_000
    # each region's simulated citizens follow its population
    for r in s.regions:
        assert r.citizens == pytest.approx(r.population * s.scale, abs=8)


def test_shipped_scenarios_agree_with_the_catalogue():
    catalogue = pytest.importorskip("socialcredit.catalogue").load_catalogue()
    for name in Scenario.shipped():
        validate_against_catalogue(Scenario.load(name), catalogue)
    china = Scenario.load("china")
    for r in china.regions:
        entry = catalogue.region(r.id)
        assert r.population == entry.population
        assert f"{r.admin_code:06d}" == entry.code


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="unknown scenario 'nope'.*default"):
        Scenario.load("nope")
    with pytest.raises(UserError, match="does not exist"):
        Scenario.load(tmp_path / "missing.yaml")


def test_minimal_file_loads_with_defaults(tmp_path):
    s = Scenario.load(write(tmp_path, MINIMAL))
    assert s.burn_in_days == 0 and s.reforms == [] and s.scale == 1.0
    assert not any(s.feedback.model_dump().values())  # open loop unless asked
    assert s.regions[0].surveillance == {}
    assert s.line_of("regions", 0, "citizens") == 9


@pytest.mark.parametrize(
    "old, new, line, words",
    [
        (
            "    income_shares: [0.25, 0.25, 0.25, 0.25]",
            "    income_shares: [0.25, 0.25, 0.25, 0.2]",
            12,
            "sum to 1",
        ),
        ("    citizens: 800", "    citizens: 801", 9, "multiple of 8"),
        ("days: 10", "days: 0", 3, "days"),
        ("seed: 7", "seed: 7\nsneed: 8", 5, "unknown key 'sneed'"),
        (
            "    consent_share: 0.5",
            "    consent_share: 0.5\n    colour: red",
            16,
            "unknown key 'colour' in regions\\[0\\]",
        ),
        ("    household_mean: 2.6", "    household_mean: 1.1", 7, "child share"),
        ("policy: national\n", "", 1, "'policy' is missing"),
        ("  - id: control", "  - id: Control", 7, "regions\\[0\\].id"),
    ],
)
def test_validation_errors_name_file_and_line(tmp_path, old, new, line, words):
    text = MINIMAL.replace(old, new)
    assert text != MINIMAL
    p = write(tmp_path, text)
    with pytest.raises(UserError, match=words) as info:
        Scenario.load(p)
    err = info.value
    assert err.path == str(p)
    assert err.line == line, err.sentence()
    assert "\n" not in err.sentence()


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = write(tmp_path, MINIMAL.replace("days: 10", "days: [10"))
    with pytest.raises(UserError, match="not valid YAML") as info:
        Scenario.load(p)
    assert info.value.path == str(p) and info.value.line is not None


def test_impossible_date_names_the_line(tmp_path):
    p = write(tmp_path, MINIMAL.replace("2018-01-01", "2018-13-01"))
    with pytest.raises(UserError, match="month") as info:
        Scenario.load(p)
    assert info.value.line == 2


def test_from_dict_and_json_dump():
    s = Scenario.load("default")
    again = Scenario.from_dict(s.to_dict())
    assert again.to_dict() == s.to_dict()
    with pytest.raises(UserError, match="days"):
        Scenario.from_dict({**s.to_dict(), "days": -1})


def test_duplicate_region_ids(tmp_path):
    region = MINIMAL[MINIMAL.index("  - id: control") :]
    p = write(tmp_path, MINIMAL + region)
    with pytest.raises(UserError, match="appears twice"):
        Scenario.load(p)


def test_behaviour_overrides_are_checked(tmp_path):
    text = MINIMAL + textwrap.dedent("""\
        behaviour:
          acts:
            jaywalking: {rate_per_year: 2.0, modifiers: {age: [1.5, 1.2, 1.0, 0.8]}}
          channels:
            camera: {coverage: 0.5}
        """)
    s = Scenario.load(write(tmp_path, text))
    assert s.behaviour.acts["jaywalking"].modifiers["age"] == [1.5, 1.2, 1.0, 0.8]
    bad = text.replace("age: [1.5, 1.2, 1.0, 0.8]", "mood: [1, 2]")
    with pytest.raises(UserError, match="mood") as info:
        Scenario.load(write(tmp_path, bad, "bad.yaml"))
    assert info.value.line == 19
    bad = text.replace("coverage: 0.5", "coverage: 1.5")
    with pytest.raises(UserError, match="coverage"):
        Scenario.load(write(tmp_path, bad, "bad2.yaml"))


def test_validate_against_catalogue_names_the_line(tmp_path):
    text = MINIMAL + "    surveillance: {camera: 2.0, drones: 1.0}\n"
    s = Scenario.load(write(tmp_path, text))
    cat = SimpleNamespace(
        regions=[SimpleNamespace(id="control", code="000000")],
        channels=[SimpleNamespace(id="camera")],
        acts=[SimpleNamespace(id="jaywalking", kind="citizen")],
        services=[],
    )
    with pytest.raises(UserError, match="unknown channel 'drones'") as info:
        validate_against_catalogue(s, cat)
    assert info.value.line == 17 and info.value.path == str(s.path)
    cat.regions = [SimpleNamespace(id="elsewhere", code="000000")]
    with pytest.raises(UserError, match="unknown region 'control'") as info:
        validate_against_catalogue(s, cat)
    assert info.value.line == 7


def test_rescaled_keeps_proportions_and_blocks():
    s = Scenario.load("default")
    for n in (1_000, 200_000, 3_000_000, 123_457):
        r = s.rescaled(n)
        counts = [x.citizens for x in r.regions]
        assert sum(counts) == round(n / 8) * 8
        assert all(c >= 8 and c % 8 == 0 for c in counts)
        for x, old in zip(r.regions, s.regions, strict=True):
            assert x.citizens / sum(counts) == pytest.approx(old.citizens / s.citizens, abs=0.01)
            assert x.population == old.citizens  # still stands for the same people
        assert r.scale == pytest.approx(sum(counts) / s.citizens)
        assert r.path == s.path
    assert s.rescaled(s.citizens) == s.model_copy(
        update={"regions": [x.model_copy(update={"population": x.citizens}) for x in s.regions]}
    )
    with pytest.raises(UserError, match="too few"):
        s.rescaled(16)


def test_rescaled_gives_small_regions_a_block():
    s = Scenario.load("china").rescaled(31 * 8)
    assert [r.citizens for r in s.regions] == [8] * 31


def test_china_rescaled_and_with_scale():
    s = Scenario.load("china")
    big = s.rescaled(10_000_000)
    assert big.citizens == 10_000_000
    assert big.scale == pytest.approx(10_000_000 / 1_409_778_724)
    assert [r.population for r in big.regions] == [r.population for r in s.regions]
    half = s.with_scale(s.scale / 2)
    assert abs(half.citizens - s.citizens / 2) <= 8 * 31


def test_apportion_is_exact_for_block_counts():
    assert apportion(1_000_000, [400_000, 400_000, 200_000]) == [400_000, 400_000, 200_000]
    assert apportion(24, [1, 1e9]) == [8, 16]
    assert sum(apportion(800, [3, 3, 3])) == 800


def test_a_services_demand_may_be_dated(tmp_path):
    """``demand`` multiplies a service's requests and may be dated; its dates cut the
    policy's epochs; a negative demand is refused with its file and line."""
    text = MINIMAL + textwrap.dedent("""\
        behaviour:
          services:
            flight: {requests_per_year: 0.8, demand: {2018-01-01: 1.0, 2018-01-06: 1.25}}
        """)
    s = Scenario.load(write(tmp_path, text))
    demand = s.behaviour.services["flight"].demand
    assert demand.at(dt.date(2018, 1, 7)) == 1.25 and demand.at(dt.date(2018, 1, 2)) == 1.0
    assert dt.date(2018, 1, 6) in s.behaviour_dates()
    bad = text.replace("1.25}", "-1.25}")
    with pytest.raises(UserError, match="demand") as info:
        Scenario.load(write(tmp_path, bad, "bad.yaml"))
    assert info.value.line == 19 and "\n" not in info.value.sentence()


def test_a_dated_demand_makes_periods_of_service_tables():
    """The epochs of equal demand share a period of twelve months of request thresholds;
    the service whose demand doubled has twice the threshold in the later period (to the
    rounding of the band modifiers) and every other service the same."""
    import numpy as np

    from socialcredit.behaviour import build_behaviour
    from socialcredit.engine import build_model

    data = Scenario.load("default").to_dict()
    data.update(start="2018-01-01", days=365, burn_in_days=0)
    data.setdefault("behaviour", {})["services"] = {
        "flight": {"demand": {"2018-01-01": 1.0, "2018-07-01": 2.0}}}
    m = build_model(Scenario.from_dict(data).rescaled(2000))
    cat = m.catalogue
    t, _ = build_behaviour(cat, m.scenario, m.policy)
    assert np.array_equal(t["svc_period"], m.extra["svc_period"])
    period = t["svc_period"]
    assert sorted(set(period.tolist())) == [0, 1]
    thr = t["svc_thr_b"].reshape(2, 12, 2, 128, -1)
    later = int(period[-1])
    k = [s.id for s in cat.services].index("flight")
    col = int(t["svc_col"][k])
    a, b = thr[1 - later, :, 0, :, col], thr[later, :, 0, :, col]
    assert a.max() > 0
    assert np.all(np.abs(b - 2 * a) <= 2 * 8)
    others = [c for c in range(thr.shape[-1]) if c != col]
    assert np.array_equal(thr[0][..., others], thr[1][..., others])
