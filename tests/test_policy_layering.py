"""Loading, dated values, layering (including mandatory rules), resolving and diffing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from socialcredit.errors import UserError
from socialcredit.policy import (
    Dated,
    default_extension,
    diff,
    load_policy,
    resolve,
    shipped_policies,
    validate_policy,
)

SHIPPED = ["national", "rongcheng", "suqian", "hangzhou", "unified",
           "list_term_one_year", "no_child_sanctions", "rongcheng_opt_in"]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_policy_passes_the_check(name: str) -> None:
    doc = validate_policy(name)
    assert doc.name == name


def test_shipped_names_resolve_to_files() -> None:
    shipped = shipped_policies()
    assert shipped["national"].is_dir()
    assert shipped["list_term_one_year"] == shipped["reforms/list_term_one_year"]
    for name in SHIPPED:
        assert name in shipped


def test_every_rule_of_every_shipped_policy_has_a_reference() -> None:
    for name in SHIPPED:
        for item in resolve(name).items:
            if item.section.split(".")[0] in {"rules", "overrides", "lists", "measures", "caps"}:
                assert item.reference, (name, item.section, item.id)


def test_national_has_no_citizen_score_and_tax_grades_for_businesses() -> None:
    doc = load_policy("national")
    assert doc.score is not None and doc.score.citizen is not None
    assert doc.score.citizen.enabled == Dated.always(False)
    business = doc.score.business
    assert business is not None and [g.name for g in business.grades or []] == ["A", "B", "C", "D"]
    assert {lst.id for lst in doc.lists or []} >= {
        "judgment_debtors", "judgment_debtor_firms", "train_ban", "flight_ban",
        "abnormal_operations", "serious_dishonesty",
    }


def test_extension_layers_on_the_baseline() -> None:
    doc = load_policy("rongcheng")
    assert doc.layers == ("national", "rongcheng")
    assert doc.region == "rongcheng"
    citizen = doc.score.citizen if doc.score else None
    assert citizen is not None and citizen.start == Dated.always(1000)
    rules = {r.id: r for r in citizen.rules or []}
    assert rules["traffic_ticket"].points == Dated.always(-5)
    assert rules["traffic_ticket"].origin == "rongcheng"
    # national lists and measures are still there
    assert any(m.id == "jd_no_flights" for m in doc.measures or [])


def test_dated_values_change_on_their_dates() -> None:
    citizen = load_policy("rongcheng").score.citizen  # type: ignore[union-attr]
    assert citizen is not None and citizen.consent_required is not None
    assert citizen.consent_required.at(dt.date(2020, 12, 31)) is False
    assert citizen.consent_required.at(dt.date(2021, 1, 1)) is True
    assert citizen.consent_required.dates() == [dt.date(2014, 1, 1), dt.date(2021, 1, 1)]


def test_dated_value_before_its_first_date_takes_the_first_value() -> None:
    d = Dated(((dt.date(2014, 1, 1), -5), (dt.date(2021, 1, 1), -3)))
    assert d.at(dt.date(2000, 1, 1)) == -5
    assert d.at(dt.date(2021, 1, 1)) == -3
    assert d.describe() == "-5 from 2014-01-01; -3 from 2021-01-01"
    assert d.to_plain() == {"2014-01-01": -5, "2021-01-01": -3}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_reform_changes_only_what_it_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.yaml", """\
name: points_halved
kind: reform
extends: rongcheng
score:
  citizen:
    rules:
      - id: traffic_ticket
        points: {2014-01-01: -5, 2020-01-01: -2}
        reference: "what-if"
""")
    doc = load_policy(path)
    assert doc.layers == ("national", "rongcheng", "points_halved")
    rules = {r.id: r for r in doc.score.citizen.rules or []}  # type: ignore[union-attr]
    assert rules["traffic_ticket"].points is not None
    assert rules["traffic_ticket"].points.at(dt.date(2020, 6, 1)) == -2
    assert rules["traffic_ticket"].act == "traffic_ticket"  # kept from the extension
    assert rules["heroic_act"].points == Dated.always(30)
    # a reform may change a mandatory rule (it is a what-if, not a regulation)
    _write(tmp_path, "m.yaml", "name: m\nkind: reform\nextends: national\nlists:\n"
           "  - {id: judgment_debtors, term_days: 100, reference: what-if}\n")
    assert load_policy(tmp_path / "m.yaml").lists[0].term_days == Dated.always(100)  # type: ignore[index]


def test_mandatory_rule_error_names_both_files(tmp_path: Path) -> None:
    path = _write(tmp_path, "ext.yaml", """\
name: ext
kind: extension
extends: national
region: suqian
score:
  business:
    overrides:
      - id: tax_crime_direct_d
        days: 10
        reference: local
""")
    with pytest.raises(UserError) as info:
        load_policy(path)
    err = info.value
    assert err.path == str(path) and err.line == 8
    assert "credit_grades.yaml" in err.message and "mandatory" in err.message


@pytest.mark.parametrize("change", ["points: -5", "remove: true"])
def test_unified_speech_penalties_apply_in_every_region(tmp_path: Path, change: str) -> None:
    """The popular account's national guideline on anti-government speech is mandatory: a
    regional extension of `unified` can neither soften nor remove it."""
    path = _write(tmp_path, "soft.yaml", f"""\
name: soft
kind: extension
extends: unified
region: hangzhou
score:
  citizen:
    rules:
      - id: criticise_government
        {change}
        reference: local
""")
    with pytest.raises(UserError) as info:
        load_policy(path)
    err = info.value
    assert err.path == str(path) and err.line == 8
    assert "unified.yaml" in err.message and "mandatory" in err.message
    # the same extension may change a rule that is not a national guideline
    _write(tmp_path, "soft.yaml", path.read_text().replace("criticise_government", "jaywalking"))
    rules = {r.id: r for r in load_policy(path).score.citizen.rules or []}  # type: ignore[union-attr]
    assert ("jaywalking" in rules) == (change != "remove: true")
    assert rules["criticise_government"].points == Dated.always(-50)
    assert rules["spread_rumours"].points == Dated.always(-50)


def test_folder_parts_cannot_define_the_same_list_twice(tmp_path: Path) -> None:
    folder = tmp_path / "pol"
    (folder / "a").mkdir(parents=True)
    _write(folder, "policy.yaml", "name: pol\nkind: baseline\n")
    entry = "lists:\n  - {id: l1, kind: black, subject: citizen, authority: t, entry: {acts: [fraud]}, reference: t}\n"
    _write(folder / "a", "one.yaml", entry)
    _write(folder, "two.yaml", entry)
    with pytest.raises(UserError) as info:
        load_policy(folder)
    assert "is already defined in" in info.value.message
    assert info.value.line == 2
    # a part file checked on its own loads its folder
    (folder / "two.yaml").unlink()
    assert load_policy(folder / "a" / "one.yaml").name == "pol"


def test_cycle_of_extends_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "name: a\nkind: reform\nextends: b.yaml\n")
    _write(tmp_path, "b.yaml", "name: b\nkind: reform\nextends: a.yaml\n")
    with pytest.raises(UserError, match="cycle"):
        load_policy(tmp_path / "a.yaml")


def test_edits_are_seen_without_restarting(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.yaml", "name: r\nkind: reform\nextends: national\n")
    assert load_policy(path).name == "r"
    path.write_text("name: r2\nkind: reform\nextends: national\n# longer now\n", encoding="utf-8")
    assert load_policy(path).name == "r2"


def test_default_extension_by_region() -> None:
    assert default_extension("rongcheng", "national") == "rongcheng"
    assert default_extension("suqian", "national") == "suqian"
    assert default_extension("control", "national") is None
    assert default_extension("rongcheng", "unified") is None


def test_resolve_for_region_and_date() -> None:
    before = resolve("national", region="rongcheng", date=dt.date(2020, 6, 1))
    after = resolve("national", region="rongcheng", date=dt.date(2021, 6, 1))
    assert before.layers == ["national", "rongcheng"]
    score = before.item("score", "citizen")
    assert score is not None and score.fields["consent_required"] == "no"
    assert after.item("score", "citizen").fields["consent_required"] == "yes"  # type: ignore[union-attr]
    assert before.item("measures", "rongcheng_low_grade_loans") is not None
    assert after.item("measures", "rongcheng_low_grade_loans") is None  # until 2020-12-31
    # before 2018-05-01 there were no transport blacklists
    early = resolve("national", date=dt.date(2017, 1, 1))
    assert early.item("lists", "train_ban") is None
    assert resolve("national").item("lists", "train_ban").fields["from"] == "2018-05-01"  # type: ignore[union-attr]
    ticket = before.item("rules.citizen", "traffic_ticket")
    assert ticket is not None and ticket.fields["points"] == "-5" and ticket.verified
    assert ticket.source.startswith("rongcheng.yaml:")
    assert before.digest() != after.digest()


def test_unverified_values_are_marked() -> None:
    items = resolve("unified").items
    assert any(not i.verified for i in items)
    jd = resolve("national").item("lists", "judgment_debtors")
    assert jd is not None and jd.verified and jd.mandatory


def test_diff_of_a_reform_shows_only_its_change() -> None:
    changes = diff(resolve("national"), resolve("list_term_one_year"))
    assert [(c.section, c.id, c.change) for c in changes] == [
        ("lists", "judgment_debtors", "changed"),
        ("lists", "judgment_debtor_firms", "changed"),
    ]
    assert changes[0].fields["term_days"] == ("0", "365")
    removed = diff(resolve("national"), resolve("no_child_sanctions"))
    assert [(c.id, c.change) for c in removed] == [("jd_no_private_school", "removed")]
    added = diff(resolve("national", region="control"), resolve("national", region="rongcheng"))
    assert ("rules.citizen", "traffic_ticket", "added") in [(c.section, c.id, c.change) for c in added]
