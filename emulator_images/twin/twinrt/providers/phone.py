"""Phone numbers and addresses (``PhoneNumberUtils``/``Patterns``, simplified).

Used by the SMS provider (canonical addresses, thread ids), the call log
(normalized numbers) and the contacts provider (phone lookup), and registered
as SQL functions on every provider connection.
"""

from __future__ import annotations

import re

from .. import props

_PHONE = re.compile(r"(\+[0-9]+[\- .]*)?(\([0-9]+\)[\- .]*)?([0-9][0-9\- .]+[0-9])")
_EMAIL = re.compile(
    r"[a-zA-Z0-9+._%\-]{1,256}@[a-zA-Z0-9][a-zA-Z0-9\-]{0,64}(\.[a-zA-Z0-9][a-zA-Z0-9\-]{0,25})+"
)
_NAME_ADDR = re.compile(r"\s*(\"[^\"]*\"|[^<>\"]+)\s*<([^<>]+)>\s*")
_MIN_MATCH = 7  # config_phonenumber_compare_min_match


def extract_addr_spec(address: str) -> str:
    """``Telephony.Mms.extractAddrSpec``: ``Name <addr>`` to ``addr``."""
    m = _NAME_ADDR.fullmatch(address)
    return m.group(2) if m else address


def is_email_address(address: str | None) -> bool:
    """``Telephony.Mms.isEmailAddress``."""
    if not address:
        return False
    return _EMAIL.fullmatch(extract_addr_spec(address)) is not None


def is_phone_number(number: str | None) -> bool:
    """``Telephony.Mms.isPhoneNumber`` (``Patterns.PHONE`` must match it all)."""
    return bool(number) and _PHONE.fullmatch(number or "") is not None


def _dialable_digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit() or c == "+")


def phone_numbers_equal(a: str | None, b: str | None, strict: int = 0, min_match: int = _MIN_MATCH) -> int:
    """The ``PHONE_NUMBERS_EQUAL`` SQL function, loosely as Android's compareLoosely.

    Numbers are equal when their digits agree from the end for at least
    ``min_match`` digits, or entirely when either is shorter.
    """
    if a is None or b is None:
        return 0
    da = _dialable_digits(a).lstrip("+")
    db = _dialable_digits(b).lstrip("+")
    if not da or not db:
        return int(a == b)
    common = 0
    for x, y in zip(reversed(da), reversed(db)):
        if x != y:
            break
        common += 1
    if common >= min_match:
        return 1
    return int(common == len(da) == len(db))


def current_country_iso() -> str:
    """``CountryMonitor.getCountryIso``: the SIM's country, else US."""
    for name in ("gsm.sim.operator.iso-country", "gsm.operator.iso-country"):
        iso = props.get(name).split(",")[0].strip()
        if iso:
            return iso.upper()
    return "US"


_NANP = {"US", "CA", "PR", "VI", "GU", "AS", "MP", "BS", "BB", "JM", "TT", "DO"}


def format_e164(number: str | None, country_iso: str) -> str | None:
    """``PhoneNumberUtils.formatNumberToE164``, for plain and NANP numbers only."""
    if not number or re.search(r"[A-Za-z@]", number):
        return None
    digits = "".join(c for c in number if c.isdigit())
    if number.strip().startswith("+"):
        return "+" + digits if 7 <= len(digits) <= 15 else None
    if country_iso.upper() in _NANP:
        if len(digits) == 10 and digits[0] not in "01":
            return "+1" + digits
        if len(digits) == 11 and digits[0] == "1":
            return "+" + digits
    return None


def min_match_key(number: str) -> str:
    """``PhoneNumberUtils.toCallerIDMinMatch``: last 7 dialable digits, reversed."""
    digits = _dialable_digits(number)
    return digits[::-1][:_MIN_MATCH]
