"""Multi-pattern matching: every needle form is found in one pass per buffer.

Two jobs, two classes:

* :class:`LiteralMatcher` finds all occurrences of many byte literals (needle
  values, hashed forms, XOR-difference patterns).  Hyperscan's literal
  compiler is used when importable; otherwise pyahocorasick.  Either way the
  work per buffer is one automaton pass, never a Python loop over needles.
* :class:`RegexTriggers` runs the scanner's fixed, small set of decoder
  "triggers" (regexes such as "start of a 16+ char base64 run") in one
  Hyperscan pass per trigger group, or with :mod:`re` (one pass per trigger,
  literal-led variants) as the fallback.

Case sensitivity is per literal: ``caseless=True`` literals match ASCII
letters in any case (Hyperscan ``HS_FLAG_CASELESS``; for pyahocorasick a
second automaton over lower-cased keys scans the lower-cased buffer).  Only
ASCII letters fold, identically in both backends.

Literals containing NUL go through Hyperscan's regex compiler, escaped: the
literal compiler's binding takes C strings.  Hyperscan's compiler needs
roughly 3 KB of transient memory per literal, so
large pattern sets are compiled into several databases ("shards") of at most
``shard_size`` literals each; that bounds peak RSS during construction at a
small cost in scan speed (one pass per shard).

Backend choice: ``"auto"`` (Hyperscan if importable), ``"hyperscan"`` or
``"pyahocorasick"``; :func:`resolve_backend` also honours the environment
variable ``HONEYPHONE_DETECT_BACKEND`` so benchmarks can force the fallback.

Threads: a compiled Hyperscan database is read-only and shared, but the
*scratch space* a scan needs may be used by one scan at a time (a second
concurrent user gets ``ScratchInUseError``).  So each instance keeps one
scratch per database *per thread* (:class:`_Scratches`, made on a thread's
first scan), and instances are safe to share between threads: the worker
runs analyses in threads, and a scan that fails there loses evidence.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["LiteralMatcher", "RegexTriggers", "Trigger", "resolve_backend", "DEFAULT_SHARD_SIZE"]

# ~3 KB of compiler memory per literal, ~180 MB per full shard.  10,000
# canaries (50,000 needles, ~40,000 patterns after suffix sharing) make one
# shard per automaton: one pass per buffer instead of two (random bytes
# +8 %, text +25 %).  The scanner compiles its automata in parallel threads,
# so compile time is the longest automaton, not their sum; peak RSS while
# compiling 10,000 canaries is ~330 MiB.
DEFAULT_SHARD_SIZE = 60_000
_ENV = "HONEYPHONE_DETECT_BACKEND"


class _Scratches:
    """One Hyperscan scratch per database per thread (see the module docstring).

    A ``threading.local`` holds each thread's list, so no lock is needed and
    a thread's scratch goes away with the thread.
    """

    def __init__(self, dbs: Sequence[Any]) -> None:
        self._dbs = list(dbs)
        self._local = threading.local()

    def get(self) -> list[Any]:
        mine: list[Any] | None = getattr(self._local, "scratch", None)
        if mine is None:
            hs = _hyperscan()
            assert hs is not None
            mine = self._local.scratch = [hs.Scratch(db) for db in self._dbs]
        return mine


def _hyperscan() -> ModuleType | None:
    """Import hyperscan lazily; None when the wheel/library is unavailable."""
    try:
        return importlib.import_module("hyperscan")
    except Exception:  # ImportError, or OSError from a missing libhs
        return None


def resolve_backend(prefer: str = "auto") -> str:
    """Pick ``"hyperscan"`` or ``"pyahocorasick"``.

    ``prefer="auto"`` defers to ``$HONEYPHONE_DETECT_BACKEND`` and then to
    whether hyperscan imports.  Asking for hyperscan when it is missing falls
    back cleanly rather than failing.
    """
    choice = prefer if prefer != "auto" else os.environ.get(_ENV, "auto")
    if choice == "pyahocorasick":
        return "pyahocorasick"
    return "hyperscan" if _hyperscan() is not None else "pyahocorasick"


class LiteralMatcher:
    """All occurrences of many byte literals, as ``(literal_index, end)`` pairs.

    ``end`` is the exclusive end offset; the start is ``end - len(literal)``.
    Overlapping occurrences are all reported; order is unspecified.
    """

    def __init__(
        self,
        patterns: Sequence[bytes],
        caseless: Sequence[bool] | None = None,
        *,
        backend: str = "auto",
        shard_size: int = DEFAULT_SHARD_SIZE,
    ) -> None:
        if caseless is None:
            caseless = [False] * len(patterns)
        if len(caseless) != len(patterns):
            raise ValueError("caseless must parallel patterns")
        if any(not p for p in patterns):
            raise ValueError("empty literal")
        self.backend = resolve_backend(backend)
        self._n = len(patterns)
        self._hs: list[tuple[Any, list[int]]] = []  # (database, ids); scratch per thread
        self._scratch = _Scratches([])
        self._exact: Any = None
        self._folded: Any = None
        if not patterns:
            return
        if self.backend == "hyperscan":
            self._build_hyperscan(patterns, caseless, max(1, shard_size))
        else:
            self._build_aho(patterns, caseless)

    def __len__(self) -> int:
        return self._n

    def _build_hyperscan(self, patterns: Sequence[bytes], caseless: Sequence[bool], shard: int) -> None:
        hs = _hyperscan()
        assert hs is not None
        # The literal compiler takes C strings, so a literal containing NUL
        # would be cut short: those go through the regex compiler, escaped.
        plain = [i for i, p in enumerate(patterns) if 0 not in p]
        with_nul = [i for i, p in enumerate(patterns) if 0 in p]
        for group, literal in ((plain, True), (with_nul, False)):
            for lo in range(0, len(group), shard):
                ids = group[lo : lo + shard]
                exprs = [patterns[i] if literal else _escape(patterns[i]) for i in ids]
                db = hs.Database(mode=hs.HS_MODE_BLOCK)
                db.compile(
                    expressions=exprs,
                    ids=list(range(len(ids))),
                    elements=len(ids),
                    flags=[hs.HS_FLAG_CASELESS if caseless[i] else 0 for i in ids],
                    literal=literal,
                )
                self._hs.append((db, ids))
        self._scratch = _Scratches([db for db, _ in self._hs])

    def _build_aho(self, patterns: Sequence[bytes], caseless: Sequence[bool]) -> None:
        ahocorasick = importlib.import_module("ahocorasick")
        exact: dict[str, list[int]] = {}
        folded: dict[str, list[int]] = {}
        for i, (pat, fold) in enumerate(zip(patterns, caseless)):
            if fold:
                folded.setdefault(pat.lower().decode("latin-1"), []).append(i)
            else:
                exact.setdefault(pat.decode("latin-1"), []).append(i)
        for table, attr in ((exact, "_exact"), (folded, "_folded")):
            if not table:
                continue
            automaton = ahocorasick.Automaton()
            for key, ids in table.items():
                automaton.add_word(key, tuple(ids))
            automaton.make_automaton()
            setattr(self, attr, automaton)

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        """Return ``(literal_index, end_offset)`` for every occurrence in ``data``."""
        out: list[tuple[int, int]] = []
        if not data or not self._n:
            return out
        if self._hs:
            for (db, ids), scratch in zip(self._hs, self._scratch.get()):
                def on_match(i: int, _f: int, end: int, _fl: int, _c: object, _ids: list[int] = ids) -> None:
                    out.append((_ids[i], end))

                db.scan(data, match_event_handler=on_match, scratch=scratch)
            return out
        if self._exact is not None:
            for last, ids in self._exact.iter(data.decode("latin-1")):
                out.extend((i, last + 1) for i in ids)
        if self._folded is not None:
            for last, ids in self._folded.iter(data.lower().decode("latin-1")):
                out.extend((i, last + 1) for i in ids)
        return out


def _escape(pattern: bytes) -> bytes:
    """A literal as a Hyperscan regex: every byte as ``\\xNN``."""
    return b"\\x" + pattern.hex(":").replace(":", "\\x").encode()


class Trigger:
    """A decoder trigger: a regex whose match *end* marks a place worth decoding.

    Triggers with different ``group`` numbers are compiled into separate
    Hyperscan databases: some patterns (long bounded repeats) scan much faster
    alone than combined, and a second pass is cheaper than the slowdown.
    ``fallback`` is an equivalent pattern tuned for :mod:`re` (which is fast
    only when a pattern starts with a literal).  Caseless patterns must be
    written in lower case: the :mod:`re` fallback runs them, case-sensitively,
    over a lower-cased copy of the buffer (literal prefixes stay fast).
    """

    __slots__ = ("name", "pattern", "caseless", "group", "fallback")

    def __init__(
        self, name: str, pattern: bytes, caseless: bool = False, group: int = 0, fallback: bytes | None = None
    ) -> None:
        self.name = name
        self.pattern = pattern
        self.caseless = caseless
        self.group = group
        self.fallback = fallback


class RegexTriggers:
    """Run a fixed list of trigger regexes over a buffer.

    Returns ``(trigger_index, end_offset)``.  With Hyperscan every end offset
    of every trigger is reported; the :mod:`re` fallback reports the ends of
    non-overlapping matches, which is equivalent for the scanner's triggers
    (they are written so that one match marks one run/escape/header).
    """

    def __init__(self, triggers: Sequence[Trigger], *, backend: str = "auto") -> None:
        self.backend = resolve_backend(backend)
        self._triggers = list(triggers)
        self._dbs: list[tuple[Any, list[int]]] = []  # (database, ids); scratch per thread
        self._scratch = _Scratches([])
        self._res: list[re.Pattern[bytes]] = []
        if self.backend == "hyperscan":
            hs = _hyperscan()
            assert hs is not None
            for group in sorted({t.group for t in self._triggers}):
                ids = [i for i, t in enumerate(self._triggers) if t.group == group]
                db = hs.Database(mode=hs.HS_MODE_BLOCK)
                db.compile(
                    expressions=[self._triggers[i].pattern for i in ids],
                    ids=list(range(len(ids))),
                    elements=len(ids),
                    flags=[hs.HS_FLAG_CASELESS if self._triggers[i].caseless else 0 for i in ids],
                )
                self._dbs.append((db, ids))
            self._scratch = _Scratches([db for db, _ in self._dbs])
        else:
            self._res = [re.compile(t.fallback or t.pattern) for t in self._triggers]

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        """Return ``(trigger_index, end_offset)`` for each trigger match."""
        out: list[tuple[int, int]] = []
        if not data:
            return out
        if self._dbs:
            for (db, ids), scratch in zip(self._dbs, self._scratch.get()):
                def on_match(i: int, _f: int, end: int, _fl: int, _c: object, _ids: list[int] = ids) -> None:
                    out.append((_ids[i], end))

                db.scan(data, match_event_handler=on_match, scratch=scratch)
            return out
        lowered = data.lower() if any(t.caseless for t in self._triggers) else data
        for i, rx in enumerate(self._res):
            hay = lowered if self._triggers[i].caseless else data
            out.extend((i, m.end()) for m in rx.finditer(hay))
        return out
