"""Generate a canary set: contacts, SMS and call logs unique to one analysis.

Why the values look the way they do
-----------------------------------
A match in captured traffic must be *proof* that planted data left the device,
so every value that becomes a leak form carries a component derived from the
analysis and nothing else:

* All randomness comes from ``blake2b(schema, seed, analysis_id)``, split into
  independent streams per kind.  The same spec gives the same set (with the
  same Faker and phonenumbers versions; the stored JSON is the record), and a
  different seed or analysis id gives unrelated values.
* Names: a Faker given and family name plus a pronounceable *rare token* as
  middle name (``Dennis Talorvin Boone``); e-mail local parts carry it too.
* SMS bodies: realistic text (templates plus Faker sentences) around a rare
  token such as ``Zorvik-4KQ7``: a 2-3 syllable word, a dash and four
  characters from a 32-letter alphabet.
* Phone numbers: drawn uniformly from the region's mobile numbering plan
  (phonenumbers' national number pattern, then checked to be a valid mobile
  of that region), every digit taken from the analysis stream.

Collision probability across analyses
-------------------------------------
Within a set, every number, token and e-mail is checked against everything
already generated and redrawn (deterministically) on a clash, so a set never
reuses a value by accident; SMS and calls reuse contact numbers on purpose.

Across analyses nothing is coordinated: uniqueness is statistical.  For values
drawn uniformly from a space of size N, two analyses holding ``a`` and ``b``
values share one with probability about ``a*b/N``, and among ``A`` analyses
holding ``n`` values each, some pair shares one with probability about
``(A*n)**2 / (2*N)``.

* Rare tokens (effective N measured as 1/sum(p**2), which is what birthday
  collisions depend on): about 6e6 words x 1e6 codes = 6e12 for SMS tokens,
  about 2e9 for 3-syllable middle names, and the full-name form also carries
  a Faker given and family name.  Text forms practically never collide.
* Numbers are the weak spot because numbering plans are small: N (see
  ``number_space``) is about 2.9e9 for US mobiles, 7.9e8 GB, 2.2e9 DE,
  1.6e8 FR, 3.6e8 JP, 7.4e9 BR, 5.2e9 CN.  Two default analyses (about 43
  distinct numbers each) share a US number with probability about 6e-7
  (1e-5 in FR, the smallest plan above); among 1,000 small analyses (3
  contacts, 3 SMS, 3 calls: about 5 numbers each) no two share a US number
  with probability about 0.996 (0.93 in FR).  A shared number is still proof
  of *a* leak; the name, body and e-mail forms say which analysis it was.

Only ``(seed, analysis_id)`` keys the randomness; locale, counts and
``start_ms`` shape the set but do not re-key it, so one analysis has one spec.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType

from sandbox.canary.forms import MIN_TEXT_CHARS
from sandbox.canary.model import (
    CALL_INCOMING,
    CALL_MISSED,
    CALL_OUTGOING,
    CALL_REJECTED,
    HISTORY_MS,
    SCHEMA,
    SMS_INBOX,
    SMS_SENT,
    CallLog,
    CallType,
    CanaryError,
    CanarySet,
    CanarySpec,
    Contact,
    Sms,
)

if TYPE_CHECKING:
    from faker import Faker

__all__ = ["generate", "number_space", "region_for_locale"]

# Faker locales that carry no (or no phonenumbers) country.
_LOCALE_REGIONS = {"de": "DE", "en": "US", "es": "ES", "fr_QC": "CA", "sw": "KE", "th": "TH"}
# Languages whose names are written family-first without spaces.
_FAMILY_FIRST = {"zh", "ja", "ko"}
_MAX_DRAWS = 1000

# --------------------------------------------------------------------------
# Entry point


def generate(spec: CanarySpec) -> CanarySet:
    """Generate the canary set for ``spec``; pure and deterministic."""
    region = spec.region or region_for_locale(spec.locale)
    key = _analysis_key(spec.seed, spec.analysis_id)
    fake = _faker(spec.locale)
    numbers = _NumberDraw(region, _stream(key, "numbers"))
    tokens = _TokenDraw(_stream(key, "tokens"))
    family_first = spec.locale.split("_")[0] in _FAMILY_FIRST

    fake.seed_instance(_derive_int(key, "faker/contacts"))
    contacts = _contacts(
        spec.contacts, fake, numbers, tokens, _stream(key, "contacts"), family_first
    )
    contact_numbers = [c.number for c in contacts]

    fake.seed_instance(_derive_int(key, "faker/sms"))
    sms = _messages(spec, fake, numbers, tokens, _stream(key, "sms"), contact_numbers)
    calls = _calls(spec, numbers, _stream(key, "calls"), contact_numbers)
    return CanarySet(spec=spec, region=region, contacts=contacts, sms=sms, calls=calls)


def region_for_locale(locale: str) -> str:
    """The phonenumbers region for a Faker locale: ``en_GB`` -> ``GB``."""
    region = _LOCALE_REGIONS.get(locale) or (locale.rsplit("_", 1)[-1] if "_" in locale else "")
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise CanaryError(
            f"cannot derive a phone region from locale {locale!r}",
            fix="pass CanarySpec(region='XX') with a two-letter region code",
        )
    return region


# --------------------------------------------------------------------------
# Randomness: one key per analysis, independent streams per purpose


def _analysis_key(seed: int, analysis_id: str) -> bytes:
    # json.dumps of a list is an injective encoding of (seed, analysis_id).
    material = json.dumps([SCHEMA, seed, analysis_id]).encode()
    return hashlib.blake2b(material, digest_size=32).digest()


def _derive_int(key: bytes, purpose: str) -> int:
    return int.from_bytes(hashlib.blake2b(key + purpose.encode(), digest_size=16).digest(), "big")


def _stream(key: bytes, purpose: str) -> random.Random:
    return random.Random(_derive_int(key, purpose))


_fakers = threading.local()  # a per-thread cache; seed_instance mutates a Faker


def _faker(locale: str) -> Faker:
    cache: dict[str, Faker] | None = getattr(_fakers, "by_locale", None)
    if cache is None:
        cache = _fakers.by_locale = {}
    if locale not in cache:
        from faker import Faker
        from faker.config import AVAILABLE_LOCALES

        if locale not in AVAILABLE_LOCALES:
            raise CanaryError(f"Faker has no locale {locale!r}", fix="use a locale such as 'en_US'")
        cache[locale] = Faker(locale)
    return cache[locale]


# --------------------------------------------------------------------------
# Phone numbers: uniform draws from the region's national number pattern
#
# The patterns in phonenumbers' metadata use a tiny regex subset: digits,
# ``\d``, ``[..]`` classes with ranges, ``(?:..)`` groups, ``|``, ``?`` and
# ``{m}`` / ``{m,n}``.  Parsing it into a tree that knows how many strings each
# node matches lets us draw uniformly over the whole plan, which maximises the
# space and so minimises cross-analysis collisions.


class _Node:
    __slots__ = ("count",)
    count: int

    def draw(self, rng: random.Random, out: list[str]) -> None:
        raise NotImplementedError


class _Chars(_Node):
    __slots__ = ("chars",)

    def __init__(self, chars: str) -> None:
        self.chars = chars
        self.count = len(chars)

    def draw(self, rng: random.Random, out: list[str]) -> None:
        out.append(self.chars[rng.randrange(self.count)])


class _Seq(_Node):
    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[_Node]) -> None:
        self.parts = tuple(parts)
        self.count = math.prod(p.count for p in self.parts)

    def draw(self, rng: random.Random, out: list[str]) -> None:
        for part in self.parts:
            part.draw(rng, out)


def _weighted(rng: random.Random, weights: Sequence[int]) -> int:
    pick = rng.randrange(sum(weights))
    for index, weight in enumerate(weights):
        if pick < weight:
            return index
        pick -= weight
    raise AssertionError("unreachable")


class _Alt(_Node):
    __slots__ = ("options", "weights")

    def __init__(self, options: Sequence[_Node]) -> None:
        self.options = tuple(options)
        self.weights = tuple(o.count for o in self.options)
        self.count = sum(self.weights)

    def draw(self, rng: random.Random, out: list[str]) -> None:
        self.options[_weighted(rng, self.weights)].draw(rng, out)


class _Repeat(_Node):
    __slots__ = ("body", "low", "weights")

    def __init__(self, body: _Node, low: int, high: int) -> None:
        self.body, self.low = body, low
        self.weights = tuple(body.count**n for n in range(low, high + 1))
        self.count = sum(self.weights)

    def draw(self, rng: random.Random, out: list[str]) -> None:
        for _ in range(self.low + _weighted(rng, self.weights)):
            self.body.draw(rng, out)


class _PatternParser:
    """Recursive descent over the regex subset described above."""

    def __init__(self, pattern: str) -> None:
        self.text, self.pos = pattern, 0

    def parse(self) -> _Node:
        node = self._alternation()
        if self.pos != len(self.text):
            raise ValueError(f"unexpected {self.text[self.pos]!r} at {self.pos}")
        return node

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _take(self, expected: str) -> None:
        if not self.text.startswith(expected, self.pos):
            raise ValueError(f"expected {expected!r} at {self.pos}")
        self.pos += len(expected)

    def _alternation(self) -> _Node:
        options = [self._sequence()]
        while self._peek() == "|":
            self.pos += 1
            options.append(self._sequence())
        return options[0] if len(options) == 1 else _Alt(options)

    def _sequence(self) -> _Node:
        parts: list[_Node] = []
        while self._peek() not in ("", "|", ")"):
            parts.append(self._quantified(self._atom()))
        return parts[0] if len(parts) == 1 else _Seq(parts)

    def _atom(self) -> _Node:
        char = self._peek()
        if char.isdigit():
            self.pos += 1
            return _Chars(char)
        if char == "\\":
            self._take("\\d")
            return _Chars("0123456789")
        if char == "[":
            return self._class()
        if char == "(":
            self._take("(?:" if self.text.startswith("(?:", self.pos) else "(")
            node = self._alternation()
            self._take(")")
            return node
        raise ValueError(f"unsupported {char!r} at {self.pos}")

    def _class(self) -> _Node:
        self._take("[")
        chars: set[str] = set()
        while self._peek() != "]":
            if self._peek() == "\\":
                self._take("\\d")
                chars.update("0123456789")
                continue
            low = self._peek()
            if not low.isdigit():
                raise ValueError(f"unsupported {low!r} in class at {self.pos}")
            self.pos += 1
            high = low
            if self._peek() == "-":
                high = self.text[self.pos + 1]
                self.pos += 2
            chars.update(chr(c) for c in range(ord(low), ord(high) + 1))
        self._take("]")
        return _Chars("".join(sorted(chars)))

    def _quantified(self, node: _Node) -> _Node:
        if self._peek() == "?":
            self.pos += 1
            return _Repeat(node, 0, 1)
        if self._peek() != "{":
            return node
        end = self.text.index("}", self.pos)
        low, _, high = self.text[self.pos + 1 : end].partition(",")
        self.pos = end + 1
        return _Repeat(node, int(low), int(high) if high else int(low))


_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_FIXED_TYPES = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


class _RegionPlan:
    """The region's mobile plan (fixed-line if it has no mobile plan)."""

    def __init__(self, region: str) -> None:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            raise CanaryError(f"phonenumbers has no metadata for region {region!r}")
        self.region, self.country_code = region, metadata.country_code
        desc, self.types = metadata.mobile, _MOBILE_TYPES
        if desc is None or not desc.national_number_pattern:
            desc, self.types = metadata.fixed_line, _FIXED_TYPES
        if desc is None or not desc.national_number_pattern:
            raise CanaryError(f"region {region!r} has no numbering plan to draw from")
        try:
            self.root = _PatternParser(desc.national_number_pattern).parse()
        except ValueError as exc:
            raise CanaryError(f"cannot read the numbering plan of {region!r}: {exc}") from exc

    def draw(self, rng: random.Random) -> PhoneNumber | None:
        digits: list[str] = []
        self.root.draw(rng, digits)
        nsn = "".join(digits)
        if nsn.startswith("0"):  # leading zeros need the parser's bookkeeping
            number = phonenumbers.parse(f"+{self.country_code}{nsn}")
        else:
            number = PhoneNumber(country_code=self.country_code, national_number=int(nsn))
        valid = (
            phonenumbers.is_valid_number_for_region(number, self.region)
            and phonenumbers.number_type(number) in self.types
        )
        return number if valid else None


@lru_cache(maxsize=64)
def _plan(region: str) -> _RegionPlan:
    return _RegionPlan(region)


def number_space(region: str) -> int:
    """How many national numbers the region's plan pattern describes.

    An upper bound on the space numbers are drawn from (a few drawn strings
    fail ``is_valid_number`` and are redrawn); the collision estimates in the
    module docstring are computed from it.
    """
    return _plan(region).root.count


class _NumberDraw:
    """Fresh valid numbers, never one this set already holds."""

    def __init__(self, region: str, rng: random.Random) -> None:
        self.plan, self.rng = _plan(region), rng
        self.used: set[str] = set()

    def new(self) -> str:
        for _ in range(_MAX_DRAWS):
            number = self.plan.draw(self.rng)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if e164 not in self.used:
                self.used.add(e164)
                return e164
        raise CanaryError(f"could not draw a fresh valid number for {self.plan.region}")


# --------------------------------------------------------------------------
# Rare tokens: pronounceable, ASCII, survive JSON/URL encoding unchanged

_ONSETS = tuple("b d f g h j k l m n p r s t v z br dr fr gr kr pr tr st sk sl th sh ch".split())
_VOWELS = tuple("a e i o u a e i o u ai ei ou ia".split())  # plain vowels twice as likely
_CODAS = ("", "", "", "", "n", "r", "l", "s", "k", "m", "nd")
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 letters, no 0/O/1/I


class _TokenDraw:
    """Rare tokens, never one this set already holds (compared case-insensitively)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _word(self, syllables: int) -> str:
        rng = self.rng
        return "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
        ).capitalize()

    def middle_name(self, accept: Callable[[str], bool]) -> str:
        """A 3-syllable name-like word (4 syllables once 3 keep failing ``accept``)."""
        for attempt in range(_MAX_DRAWS):
            word = self._word(3 if attempt < 8 else 4)
            if len(word) <= 12 and word.lower() not in self.used and accept(word):
                self.used.add(word.lower())
                return word
        raise CanaryError("could not draw a fresh rare name token")

    def code(self) -> str:
        """``Zorvik-4KQ7``: at least 12 characters, so it is a form on its own."""
        for _ in range(_MAX_DRAWS):
            code = "".join(self.rng.choices(_CODE_ALPHABET, k=4))
            token = f"{self._word(self.rng.choice((2, 3)))}-{code}"
            if 12 <= len(token) <= 18 and token.lower() not in self.used:
                self.used.add(token.lower())
                return token
        raise CanaryError("could not draw a fresh rare token")


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


# --------------------------------------------------------------------------
# Items


def _contacts(
    count: int,
    fake: Faker,
    numbers: _NumberDraw,
    tokens: _TokenDraw,
    rng: random.Random,
    family_first: bool,
) -> tuple[Contact, ...]:
    contacts = []
    for index in range(count):
        given, family = fake.first_name(), fake.last_name()
        middle = tokens.middle_name(
            lambda word: len(_display_name(given, word, family, family_first)) >= MIN_TEXT_CHARS
        )
        email = None
        if rng.random() < 0.6:
            slug = _ascii_slug(given)
            if slug:
                local = f"{slug}.{middle.lower()}"
            else:  # no ASCII given name (CJK): the token and two digits
                local = f"{middle.lower()}{rng.randrange(10, 100)}"
            email = f"{local}@{fake.free_email_domain()}"
        contacts.append(
            Contact(
                id=f"c{index:04d}",
                given_name=given,
                middle_name=middle,
                family_name=family,
                display_name=_display_name(given, middle, family, family_first),
                number=numbers.new(),
                email=email,
            )
        )
    return tuple(contacts)


def _display_name(given: str, middle: str, family: str, family_first: bool) -> str:
    """``Dennis Talorvin Boone``; ``梁亮 Talorvin`` where names are family-first."""
    return f"{family}{given} {middle}" if family_first else f"{given} {middle} {family}"


_SMS_TEMPLATES = (
    "Hey, running late. {s} Table is under {token}.",
    "Your verification code is {otp}. Ref {token}. Do not share this code.",
    "{token} is your login code. It expires in 10 minutes.",
    "wifi password at the cabin is {token} btw",
    "Tracking no. {token}: your parcel arrives {day}. {s}",
    "Happy birthday {name}!! Use {token} at checkout for 20% off",
    "Can you grab the keys? Locker {token}, pin {pin}.",
    "Meeting moved to {time}, room {token}. {s}",
    "lol {s} ({token})",
    "Reminder: appointment {day} at {time}. Confirmation {token}.",
    "Sent you the doc, password is {token}. {s}",
    "ok see you at {time}! gate code {token}",
    "{s} Btw the booking ref is {token}.",
    "Did {name} send you {token} yet? {s}",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "tomorrow")


def _date_ms(rng: random.Random, start_ms: int) -> int:
    return start_ms - rng.randrange(60_000, HISTORY_MS)


def _pick_number(
    rng: random.Random,
    numbers: _NumberDraw,
    contact_numbers: Sequence[str],
    others: list[str],
    p_contact: float,
) -> str:
    """A contact's number, an unknown number seen before, or a fresh one."""
    roll = rng.random()
    if contact_numbers and roll < p_contact:
        return rng.choice(contact_numbers)
    if others and roll < p_contact + 0.15:
        return rng.choice(others)
    others.append(numbers.new())
    return others[-1]


def _messages(
    spec: CanarySpec,
    fake: Faker,
    numbers: _NumberDraw,
    tokens: _TokenDraw,
    rng: random.Random,
    contact_numbers: Sequence[str],
) -> tuple[Sms, ...]:
    messages: list[Sms] = []
    others: list[str] = []
    for index in range(spec.sms):
        address = _pick_number(rng, numbers, contact_numbers, others, 0.65)
        token = tokens.code()
        template = rng.choice(_SMS_TEMPLATES)
        body = template.format(
            token=token,
            s=fake.sentence(nb_words=rng.randint(4, 9)) if "{s}" in template else "",
            name=fake.first_name() if "{name}" in template else "",
            otp=f"{rng.randrange(10**6):06d}",
            pin=f"{rng.randrange(10**4):04d}",
            time=f"{rng.randint(7, 21)}:{rng.choice(('00', '15', '30', '45'))}",
            day=rng.choice(_DAYS),
        )
        date_ms = _date_ms(rng, spec.start_ms)
        kind = SMS_SENT if rng.random() < 0.4 else SMS_INBOX
        recent = spec.start_ms - date_ms < 2 * 24 * 3600 * 1000
        read = kind == SMS_SENT or not (recent and rng.random() < 0.5)
        messages.append(
            Sms(
                id=f"s{index:04d}",
                address=address,
                body=body,
                token=token,
                date_ms=date_ms,
                type=kind,
                read=read,
            )
        )
    return tuple(messages)


_CALL_TYPES: tuple[CallType, ...] = (CALL_INCOMING, CALL_OUTGOING, CALL_MISSED, CALL_REJECTED)
_CALL_WEIGHTS = (40, 35, 20, 5)


def _calls(
    spec: CanarySpec, numbers: _NumberDraw, rng: random.Random, contact_numbers: Sequence[str]
) -> tuple[CallLog, ...]:
    calls: list[CallLog] = []
    others: list[str] = []
    for index in range(spec.calls):
        number = _pick_number(rng, numbers, contact_numbers, others, 0.55)
        kind = rng.choices(_CALL_TYPES, _CALL_WEIGHTS)[0]
        answered = kind in (CALL_INCOMING, CALL_OUTGOING)
        duration = min(7200, max(1, int(rng.lognormvariate(4.0, 1.1)))) if answered else 0
        calls.append(
            CallLog(
                id=f"l{index:04d}",
                number=number,
                date_ms=_date_ms(rng, spec.start_ms),
                duration_s=duration,
                type=kind,
            )
        )
    return tuple(calls)
