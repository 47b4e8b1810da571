"""Unified Social Credit Codes (GB 32100-2015) for synthetic businesses.

A code has 18 characters over ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (31 symbols; no I, O, S,
V, Z): registration authority (1), entity type (1), the 6-digit administrative division code
(GB/T 2260), the 9-character organisation code (GB 11714: 8 characters and a check character)
and the check character of the whole code. The simulation issues codes with authority ``9``
(market regulator) and type ``1`` (enterprise), and writes the business's subject id in base
31 as the organisation code's 8 characters, so the id can be read back from the code.
"""

from __future__ import annotations

from collections.abc import Callable

from socialcredit.errors import UserError

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
# GB 11714 organisation code: values of 0-9 and A-Z, weights of the 8 body characters
_ORG_VALUE = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_BODY = 8
#: Largest id a code can carry: the organisation code body holds 8 base-31 digits.
MAX_ID = 31**_BODY - 1


def check_char(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters."""
    total = sum(_INDEX[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    c = 31 - total % 31
    return ALPHABET[0 if c == 31 else c]


def _org_check(body: str) -> str:
    """The GB 11714 check character of an organisation code's 8-character body."""
    total = sum(_ORG_VALUE[c] * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def _normal(code: str) -> str:
    return code.strip().upper()


def valid(code: str) -> bool:
    """True when ``code`` is 18 characters of the alphabet with a correct check character."""
    if not isinstance(code, str):
        return False
    code = _normal(code)
    if len(code) != 18 or any(c not in _INDEX for c in code):
        return False
    return check_char(code[:17]) == code[17]


def code_for(business_id: int, region_admin_code: int) -> str:
    """The code of a business subject id in a region with a 6-digit administrative code."""
    if not 0 <= business_id <= MAX_ID:
        raise ValueError(f"business id {business_id} is outside [0, {MAX_ID}]")
    if not 0 <= region_admin_code <= 999_999:
        raise ValueError(f"administrative code {region_admin_code} is not 6 digits")
    digits = []
    n = business_id
    for _ in range(_BODY):
        n, d = divmod(n, 31)
        digits.append(ALPHABET[d])
    body = "".join(reversed(digits))
    first17 = f"91{region_admin_code:06d}{body}{_org_check(body)}"
    return first17 + check_char(first17)


def business_id_from_code(code: str) -> int:
    """The business subject id written in a code issued by :func:`code_for`."""
    text = _normal(code) if isinstance(code, str) else ""
    if len(text) != 18:
        raise UserError(f"{code!r} is not a Unified Social Credit Code (it needs 18 characters)")
    bad = [c for c in text if c not in _INDEX]
    if bad:
        raise UserError(
            f"{code!r} is not a Unified Social Credit Code (it contains {bad[0]!r}, which the "
            "code alphabet excludes)"
        )
    if check_char(text[:17]) != text[17]:
        raise UserError(f"{code!r} has a wrong check character; it is mistyped or not a real code")
    body = text[8 : 8 + _BODY]
    if not text[2:8].isdigit() or _org_check(body) != text[16]:
        raise UserError(f"{code!r} is a valid code but not one this simulation issues")
    return _body_id(body)


def _body_id(body: str) -> int:
    n = 0
    for c in body:
        n = n * 31 + _INDEX[c]
    return n


#: Decimal ids have at most this many digits (``MAX_ID`` has 12); longer digit strings are
#: neither ids nor, unless 18 characters long, codes.
MAX_ID_DIGITS = len(str(MAX_ID))


def parse_subject(text: str | int, n_citizens: int, n_businesses: int,
                  code_of: Callable[[int], str | None], where: str = "this run") -> int:
    """The subject id that a user typed (DESIGN 8, Subjects), for the CLI and the explorer.

    An 18-character argument is a Unified Social Credit Code, checked by GB 32100: the code
    alphabet, the check character, a six-digit region part (GB/T 2260), and then the whole
    code against ``code_of(id)``, the code of the business it names, so that a code with
    another region, authority or type is refused. A code made only of digits is still a
    code. Anything else must be a decimal id from 0 to ``n_citizens + n_businesses - 1``.
    ``code_of`` returns None when the codes cannot be rebuilt. ``where`` names the run in
    the sentences of the :class:`UserError` raised for anything else."""
    raw = str(text)
    s = raw.upper()  # not stripped: ' 5' is no id (DESIGN 8)
    total = n_citizens + n_businesses
    if len(s) == 18:
        bad = next((c for c in s if c not in _INDEX), None)
        if bad is not None:
            raise UserError(f"{raw!r} is not a Unified Social Credit Code: it contains {bad!r}, "
                            "which the code alphabet excludes")
        if check_char(s[:17]) != s[17]:
            raise UserError(f"{raw!r} is not a Unified Social Credit Code: its check character "
                            "is wrong, so it is mistyped or not a real code")
        if not s[2:8].isdigit():
            raise UserError(f"{raw!r} is not a Unified Social Credit Code: its region part "
                            f"{s[2:8]} is not a six-digit administrative division code")
        body = s[8 : 8 + _BODY]
        sid = _body_id(body)
        if _org_check(body) != s[16] or not n_citizens <= sid < total:
            raise UserError(f"no business of {where} has the code {s}")
        expected = code_of(sid)
        if expected is None:
            raise UserError(f"the codes of the businesses of {where} cannot be rebuilt, so "
                            f"name the business by its id, not by the code {s}")
        if expected[2:8] != s[2:8]:
            raise UserError(f"no business of {where} has the code {s}: its region part "
                            f"{s[2:8]} is not the region of business {sid} ({expected[2:8]})")
        if expected != s:
            raise UserError(f"no business of {where} has the code {s}")
        return sid
    if s.isascii() and s.isdigit() and len(s) <= MAX_ID_DIGITS:
        sid = int(s)
        if sid >= total:
            raise UserError(f"subject {sid} does not exist ({where} has no subject beyond "
                            f"{total - 1})")
        return sid
    raise UserError(f"{raw!r} names no subject of {where}: it is not an id from 0 to "
                    f"{total - 1} and not a Unified Social Credit Code (18 characters)")
