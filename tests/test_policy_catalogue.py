"""The catalogue: complete, referenced, within the kernel's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcredit.catalogue import BANDS, CATALOGUE_DIR, load_catalogue
from socialcredit.errors import UserError

POPULAR_EXAMPLES = [
    "return_lost_money", "help_police", "organ_donation", "blood_donation", "volunteering",
    "spread_rumours", "criticise_government", "jaywalking", "debt_default", "court_default",
    "late_utility_bill", "fraud", "smoking_on_train", "tax_offence",
]
RONGCHENG_TABLE = [
    "contract_non_performance", "sued_in_breach", "bank_arrears", "private_lending_breach",
    "illegal_fundraising", "guarantee_breach", "sued_unpaid_debt", "mlm_commercial_fraud",
    "counterfeit_goods", "late_public_service_fees", "court_confirmed_fee_arrears",
    "heating_tampering", "stealing_utilities", "destroying_utility_equipment",
]
OTHER_ACTS = ["traffic_ticket", "drunk_driving", "heroic_act", "disrupt_flight", "ticket_scalping"]
BUSINESS_ACTS = [
    "late_tax_payment", "late_tax_filing", "tax_evasion", "no_annual_report",
    "unreachable_at_address", "false_information", "firm_counterfeit_goods", "contract_fraud",
]
CHANNELS = [
    "camera", "ecommerce", "payments", "social_media", "search", "location", "courts",
    "tax_bureau", "police", "banks", "utilities", "market_regulator", "grid_workers",
    "transport_operators",
]
SERVICES = [
    "flight", "train", "hotel", "private_school", "job", "senior_post", "loan", "rental",
    "hospital", "internet", "subsidy", "bike_rental", "heating_discount",
    "government_procurement", "business_loan", "public_tender", "honours",
]


def test_every_required_act_exists_with_the_right_kind() -> None:
    cat = load_catalogue()
    for act in POPULAR_EXAMPLES + RONGCHENG_TABLE + OTHER_ACTS:
        assert cat.act(act).kind == "citizen", act
    for act in BUSINESS_ACTS:
        assert cat.act(act).kind == "business", act
    assert len(cat.acts) <= 60


def test_channels_services_and_limits() -> None:
    cat = load_catalogue()
    assert set(CHANNELS) <= set(cat.channel_index)
    assert set(SERVICES) <= set(cat.service_index)
    assert len(cat.channels) <= 31 and len(cat.services) <= 31
    assert all(0 <= c.delay_days <= 1023 for c in cat.channels)
    assert cat.channel("camera").misid_per_year > 0
    assert cat.service("private_school").ages == [0]
    assert cat.service("private_school").months == [9]


def test_every_entry_has_a_reference_and_bands_fit() -> None:
    cat = load_catalogue()
    for entry in [*cat.acts, *cat.channels, *cat.services, *cat.regions]:
        assert entry.reference.strip(), entry.id
    for act in cat.acts:
        for axis, values in act.modifiers.items():
            assert len(values) == BANDS[act.kind][axis]
        assert act.channels and all(ch in cat.channel_index for ch in act.channels)
        # Unsourced rates are marked as assumptions (all of them, for now).
        assert act.note is not None and "assumption" in act.note, act.id


def test_regions_are_the_31_provinces_plus_pilots_and_control() -> None:
    cat = load_catalogue()
    provinces = [r for r in cat.regions if r.level == "province"]
    assert len(provinces) == 31
    # The census total 1,411,778,724 also counts 2 million active service members.
    assert sum(r.population for r in provinces) == 1_409_778_724
    assert len({r.code for r in cat.regions}) == len(cat.regions)
    for city in ("rongcheng", "suqian", "hangzhou"):
        assert cat.region(city).level == "city"
        assert cat.region(cat.region(city).parent or "").level == "province"
    assert cat.region("control").level == "synthetic"


def test_categories_and_indexes_agree() -> None:
    cat = load_catalogue()
    for i, act in enumerate(cat.acts):
        assert cat.act_index[act.id] == i
        assert cat.categories[cat.category_index[act.category]] == act.category
    assert load_catalogue() is cat  # cached


def _copy_catalogue(tmp_path: Path) -> Path:
    for name in ("acts.yaml", "channels.yaml", "services.yaml", "regions.yaml"):
        (tmp_path / name).write_text((CATALOGUE_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("channels: [community, police]", "channels: [community, polize]", "unknown channel 'polize'"),
        ("modifiers: {age: [0.3, 1.0, 1.0, 1.0]}", "modifiers: {age: [0.3, 1.0]}", "'age' modifiers need 4 values"),
        ("rate_per_year: 0.02\n", "rate_per_year: fast\n", "input should be a valid number"),
        ("valence: rewarded\n", "valence: good\n", "input should be 'penalised', 'rewarded' or 'neutral'"),
        ("met_at_once: 0.9\n", "met_at_once: 1.5\n", "less than or equal to 1"),
        ("channels: [community, police]", "met_at_once: 0.5\n    channels: [community, police]",
         "this act creates no obligation"),
    ],
)
def test_bad_catalogue_entries_are_located(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    folder = _copy_catalogue(tmp_path)
    acts = folder / "acts.yaml"
    text = acts.read_text(encoding="utf-8")
    assert old in text
    acts.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = text[: text.index(old)].count("\n") + 1
    with pytest.raises(UserError) as info:
        load_catalogue(folder)
    assert fragment in info.value.message
    assert info.value.path == str(acts)
    # The error points at the offending line or at the start of its entry (a few lines up).
    assert info.value.line is not None and line - 8 <= info.value.line <= line
