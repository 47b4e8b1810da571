"""``socialcredit policy audit``: the rights each rule and measure touches (DESIGN 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import invoke
from socialcredit.analysis.audit import SEVERITIES, audit_policy, findings_json
from socialcredit.catalogue import load_catalogue
from socialcredit.policy import load_policy, shipped_policies
from socialcredit.policy.compiler import rule_source


def cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return invoke(args, monkeypatch, capsys, columns=200)


def speech_penalties(policy: str) -> set[str]:
    """Compiled names of the rules of a policy that take points for an act of speech."""
    cat = load_catalogue()
    speech = {a.id for a in cat.acts if a.category == "speech"}
    doc = load_policy(policy)
    names = set()
    for kind in ("citizen", "business"):
        section = getattr(doc.score, kind) if doc.score is not None else None
        for r in (section.rules or []) if section is not None else []:
            if r.act in speech and r.points is not None and min(r.points.values()) < 0:
                names.add(rule_source(r, "score")[0])
        for o in (section.overrides or []) if section is not None else []:
            if o.act in speech:
                names.add(rule_source(o, "override")[0])
    for lst in doc.lists or []:
        if lst.kind == "black" and lst.entry is not None and set(lst.entry.acts or []) & speech:
            names.add(rule_source(lst, "list", ".acts")[0])
    return names


def throttles(policy: str) -> set[str]:
    """The measures that throttle a connection: ICCPR 19 covers seeking and receiving
    information as well as expression."""
    doc = load_policy(policy)
    return {f"{m.origin}.measure.{m.id}" for m in doc.measures or [] if m.effect == "throttle"}


def flagged(policy: str, right: str) -> set[str]:
    return {f.rule for f in audit_policy(policy) if right in f.rights}


def test_unified_speech_rules_are_all_flagged() -> None:
    expected = speech_penalties("unified")
    assert expected == {"unified.score.spread_rumours", "unified.score.criticise_government"}
    assert throttles("unified") == {"unified.measure.low_score_slow_internet"}
    assert flagged("unified", "ICCPR 19") == expected | throttles("unified")
    speech = [f for f in audit_policy("unified") if "ICCPR 19" in f.rights
              and f.rule in expected]
    assert {f.rule for f in speech} == expected
    for f in speech:
        assert f.severity == "high"
        assert "expression" in f.why
    (slow,) = [f for f in audit_policy("unified") if "ICCPR 19" in f.rights
               and f.rule not in expected]
    assert slow.severity == "medium" and "access to information" in slow.why


@pytest.mark.parametrize("policy", sorted({str(p) for p in shipped_policies()}))
def test_every_shipped_policy_is_flagged_exactly_for_its_speech_rules(policy: str) -> None:
    assert flagged(policy, "ICCPR 19") == speech_penalties(policy) | throttles(policy)


def test_national_has_no_speech_finding_but_its_child_and_travel_measures() -> None:
    findings = audit_policy("national")
    assert not any("ICCPR 19" in f.rights for f in findings)
    crc = {f.rule for f in findings if "CRC 2(2)" in f.rights}
    assert crc == {"national.measure.jd_no_private_school"}
    travel = {f.rule for f in findings if "ICCPR 12" in f.rights}
    assert {"national.measure.jd_no_flights", "national.measure.train_ban_trains",
            "national.measure.flight_ban_flights"} <= travel
    # the national baseline has a 10-day objection window: no sanction goes unheard
    assert not any("ICCPR 14" in f.rights and f.severity == "high" for f in findings)


def test_a_reform_removing_the_child_sanction_removes_the_finding() -> None:
    assert not flagged("no_child_sanctions", "CRC 2(2)")


def test_unified_sanctions_have_no_objection_window() -> None:
    findings = audit_policy("unified")
    deny = {f"unified.measure.{m.id}" for m in load_policy("unified").measures or []
            if m.effect in ("deny", "throttle")}  # the sanctions
    assert {f.rule for f in findings if "ICCPR 14" in f.rights and f.severity == "high"} == deny
    # score-based travel bans are the severe kind
    assert {f.severity for f in findings if "ICCPR 12" in f.rights} == {"high"}


def test_privacy_and_unequal_channels() -> None:
    findings = audit_policy("unified")
    privacy = {f.rule for f in findings if "ICCPR 17" in f.rights}
    # rumours and criticism are seen through search history, jaywalking through location
    assert {"unified.score.spread_rumours", "unified.score.criticise_government",
            "unified.score.jaywalking"} <= privacy
    unequal = [f for f in findings if "ICCPR 26" in f.rights]
    assert any(f.rule == "unified.score.jaywalking" and "children" in f.why for f in unequal)


def test_regional_items_and_rewards(tmp_path: Path) -> None:
    policy = tmp_path / "mini.yaml"
    policy.write_text(
        "name: mini\nkind: baseline\nreference: test [U]\n"
        "score:\n  citizen:\n    enabled: true\n    start: 100\n    floor: 0\n    ceiling: 200\n"
        "    cadence: daily\n    reference: test [U]\n"
        "    grades:\n      - {name: good, min: 50}\n      - {name: bad}\n"
        "    rules:\n"
        "      - {id: praise, act: criticise_government, points: 5, reference: 'test [U]'}\n"
        "      - {id: jay, act: jaywalking, points: -1, regions: [rongcheng],"
        " reference: 'test [U]'}\n"
        "appeals: {objection_window_days: 10, delay_days: 5, win_true: 0.1, win_false: 0.5,"
        " reference: 'test [U]'}\n",
        encoding="utf-8",
    )
    findings = audit_policy(policy)
    assert not any("ICCPR 19" in f.rights for f in findings), "a reward is not a penalty"
    regional = [f for f in findings if f.rule == "mini.score.jay" and "ICCPR 26" in f.rights]
    assert any("only in rongcheng" in f.why for f in regional)


def test_extension_layers_are_flagged_once() -> None:
    findings = audit_policy("rongcheng")
    ext = [f for f in findings if f.rule == "rongcheng"]
    assert len(ext) == 1 and ext[0].rights == ("ICCPR 26",) and ext[0].severity == "low"


def test_json_form_is_the_contract(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["policy", "audit", "unified", "--json"], monkeypatch, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list) and data
    for f in data:
        assert set(f) == {"rule", "rights", "severity", "why"}
        assert isinstance(f["rights"], list) and all(isinstance(r, str) for r in f["rights"])
        assert all(r.startswith(("ICCPR ", "CRC ")) for r in f["rights"])
        assert f["severity"] in SEVERITIES
        assert f["why"]
    assert data == findings_json(audit_policy("unified"))
    assert any(f["rule"] == "unified.score.criticise_government" and "ICCPR 19" in f["rights"]
               for f in data)


def test_table_and_bad_input(monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["policy", "audit", "unified"], monkeypatch, capsys)
    assert code == 0
    assert "ICCPR 19" in out and "CRC 2(2)" in out and "findings:" in out
    code, out, err = cli(["policy", "audit", "no_such_policy"], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: ") and "no_such_policy" in err
    assert "Traceback" not in out + err
