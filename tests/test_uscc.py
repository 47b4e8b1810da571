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


# --- a subject as typed (the parser shared by the command line and the explorer) -------------

C, B = 4000, 168  # a 4,000-citizen run: businesses are subjects 4000 … 4167


def _code_of(sid: int) -> str:
    return uscc.code_for(sid, 371082)


def test_a_code_of_digits_only_is_a_code_not_an_id():
    code = _code_of(C)
    assert code == "913710820000045117" and code.isdigit()
    assert uscc.parse_subject(code, C, B, _code_of) == C
    digits_only = [b for b in range(C, C + B) if _code_of(b).isdigit()]
    assert len(digits_only) > 5  # 15 of the 168 in this region
    for b in digits_only:
        assert uscc.parse_subject(_code_of(b), C, B, _code_of) == b


def test_ids_and_codes_as_typed():
    assert uscc.parse_subject("17", C, B, _code_of) == 17
    with pytest.raises(UserError):  # an id is digits only, as typed (DESIGN 8)
        uscc.parse_subject(" 4001 ", C, B, _code_of)
    assert uscc.parse_subject(4001, C, B, _code_of) == 4001
    assert uscc.parse_subject(_code_of(4100).lower(), C, B, _code_of) == 4100


def test_a_code_is_checked_against_the_business_it_names():
    # a well-formed code (correct check characters) of another region
    other_region = uscc.code_for(4100, 371083)
    assert uscc.valid(other_region)
    with pytest.raises(UserError, match="region part 371083 is not the region of business "
                                        "4100 \\(371082\\)"):
        uscc.parse_subject(other_region, C, B, _code_of)
    # another authority and type
    first17 = "51" + _code_of(4100)[2:17]
    with pytest.raises(UserError, match="no business of this run has the code"):
        uscc.parse_subject(first17 + uscc.check_char(first17), C, B, _code_of)
    # a citizen's id written as a code, and a business beyond the run
    for sid in (5, C + B):
        with pytest.raises(UserError, match="no business of this run has the code"):
            uscc.parse_subject(_code_of(sid), C, B, _code_of)
    # a region part that is not six digits
    first17 = "913710A2" + _code_of(4100)[8:17]
    with pytest.raises(UserError, match="region part 3710A2 is not a six-digit"):
        uscc.parse_subject(first17 + uscc.check_char(first17), C, B, _code_of)
    with pytest.raises(UserError, match="cannot be rebuilt"):
        uscc.parse_subject(_code_of(4100), C, B, lambda _: None)


@pytest.mark.parametrize("text, words", [
    ("913710820000045118", "check character is wrong"),
    ("91371082000004511O", "the code alphabet excludes"),
    ("4168", "subject 4168 does not exist (the run x has no subject beyond 4167)"),
    ("99999999999999", "names no subject of the run x"),
    ("-1", "not an id from 0 to 4167 and not a Unified Social Credit Code"),
    ("someone", "not a Unified Social Credit Code"),
    ("", "names no subject"),
    ("١٢", "names no subject"),  # digits, but not ASCII ones
])
def test_what_is_not_a_subject_is_one_sentence(text, words):
    with pytest.raises(UserError) as info:
        uscc.parse_subject(text, C, B, _code_of, where="the run x")
    assert words in info.value.sentence() and "\n" not in info.value.sentence()
