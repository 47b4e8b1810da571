import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit import uscc
from socialcredit.errors import UserError

REAL = "91350100M000100Y43"  # a published code with a correct check character


def test_real_code_validates_and_corruption_fails():
    assert uscc.valid(REAL)
    assert uscc.valid(REAL.lower())
    assert not uscc.valid(REAL[:-1] + "4")
    assert not uscc.valid(REAL[:5] + "9" + REAL[6:])
    assert not uscc.valid(REAL[:-1])
    assert not uscc.valid("91350100M000100YI3")  # I is not in the alphabet


def test_check_character_formula():
    # c = 31 - (sum of index x weight mod 31), 31 -> 0 (FACTS.md)
    total = sum(uscc.ALPHABET.index(c) * w for c, w in zip(REAL[:17], uscc.WEIGHTS, strict=True))
    c = 31 - total % 31
    assert uscc.ALPHABET[0 if c == 31 else c] == REAL[17]


@settings(deadline=None, max_examples=300)
@given(st.integers(0, uscc.MAX_ID), st.integers(0, 999_999))
def test_round_trip(business_id, admin):
    code = uscc.code_for(business_id, admin)
    assert len(code) == 18
    assert set(code) <= set(uscc.ALPHABET)
    assert code.startswith("91") and code[2:8] == f"{admin:06d}"
    assert uscc.valid(code)
    assert uscc.business_id_from_code(code) == business_id


@settings(deadline=None, max_examples=300)
@given(st.integers(0, uscc.MAX_ID), st.integers(0, 17), st.integers(1, 30))
def test_every_single_substitution_is_detected(business_id, pos, shift):
    code = uscc.code_for(business_id, 371082)
    k = (uscc.ALPHABET.index(code[pos]) + shift) % 31
    bad = code[:pos] + uscc.ALPHABET[k] + code[pos + 1 :]
    assert not uscc.valid(bad)
    with pytest.raises(UserError):
        uscc.business_id_from_code(bad)


@pytest.mark.parametrize(
    "code, words",
    [
        ("123", "18 characters"),
        ("91350100M000100YO3", "alphabet"),
        (REAL[:-1] + "4", "check character"),
    ],
)
def test_decoding_errors_are_plain_sentences(code, words):
    with pytest.raises(UserError, match=words):
        uscc.business_id_from_code(code)


def test_code_limits():
    with pytest.raises(ValueError):
        uscc.code_for(uscc.MAX_ID + 1, 0)
    with pytest.raises(ValueError):
        uscc.code_for(0, 1_000_000)
