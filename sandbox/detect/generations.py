"""One scan generation: decoded pieces concatenated into one buffer.

Why a module: the concatenation is what keeps a scan's per-byte work in C
(every matcher and trigger pass runs over one ``big`` buffer however many
pieces a generation has), and the piece bookkeeping -- where a piece is,
which chain produced it, where in the caller's buffer it came from -- is
shared by the scanner (``scan.py``) and the decoders (``regions.py``).
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from .alphabets import B64_MAP, run_list

#: Separator between fragments of a generation.  NULs end every text run
#: (base64/hex/URL/JSON) and break UTF-16 pairs; the trailing blank line
#: makes every fragment start look like an HTTP body start to the triggers.
SEP = b"\x00\x00\r\n\r\n"
MIN_CHILD = 4
SNIFF_DEFLATE = 1
SNIFF_BROTLI = 2
SNIFF_ALL = SNIFF_DEFLATE | SNIFF_BROTLI
SNIFF_BODY = 4  # an HTTP body: the stream may be followed by more of the flow

# A child is (data, chain elements, parent piece, src start, src end, sniff).
Child = tuple[bytes, tuple[str, ...], int, int, int, int]


class Budget:
    """Remaining decoded-bytes allowance for one scan."""

    __slots__ = ("left", "exhausted")

    def __init__(self, total: int) -> None:
        self.left = max(0, total)
        self.exhausted = False

    def take(self, n: int) -> bool:
        if n > self.left:
            self.exhausted = True
            return False
        self.left -= n
        return True


class Gen:
    """One generation: its pieces concatenated (``SEP``-separated) into ``big``.

    Per-piece metadata stays in the emitted child tuples; chains and origins
    are derived lazily from parent pointers, only when a hit needs them, so a
    piece costs one tuple and one list slot.
    """

    __slots__ = ("big", "depth", "starts", "pieces", "parent", "_chains", "_b64_map", "_b64_runs")

    def __init__(self, big: bytes, depth: int, starts: list[int], pieces: list[Child], parent: Gen | None) -> None:
        self.big = big
        self.depth = depth
        self.starts = starts
        self.pieces = pieces
        self.parent = parent
        self._chains: dict[int, tuple[str, ...]] = {}
        self._b64_map: bytes | None = None
        self._b64_runs: tuple[bytes, tuple[list[int], list[int]]] | None = None

    @classmethod
    def root(cls, data: bytes) -> Gen:
        return cls(data, 0, [0], [(data, (), -1, 0, len(data), SNIFF_ALL | SNIFF_BODY)], None)

    @classmethod
    def from_children(cls, children: list[Child], parent: Gen) -> Gen:
        sep = len(SEP)
        lengths = [len(c[0]) + sep for c in children]
        starts = list(accumulate(lengths[:-1], initial=sep))
        big = b"".join((SEP, SEP.join([c[0] for c in children]), SEP))
        return cls(big, parent.depth + 1, starts, children, parent)

    def end(self, i: int) -> int:
        return self.starts[i] + len(self.pieces[i][0])

    def b64_map(self) -> bytes:
        """``big`` class-mapped to the base64 alphabet (see :func:`_class_map`),
        made once per generation: the digest lookup and the decoders both
        look for runs in it, each of its own minimum length."""
        if self._b64_map is None:
            self._b64_map = self.big.translate(B64_MAP)
        return self._b64_map

    def b64_runs(self, xs: bytes) -> tuple[list[int], list[int]]:
        """Runs of at least ``len(xs)`` chars of :meth:`b64_map` (see
        :func:`run_list`), found once per generation: the digest lookup
        asks for the decoders' (shorter) minimum and keeps the long ones
        (:func:`at_least`), so the run search costs one pass, not two."""
        if self._b64_runs is None or self._b64_runs[0] != xs:
            self._b64_runs = (xs, run_list(self.b64_map(), xs))
        return self._b64_runs[1]

    def locate(self, pos: int) -> int:
        """Index of the piece containing ``pos``, or -1 (separator/outside)."""
        i = bisect_right(self.starts, pos) - 1
        if i < 0 or pos >= self.starts[i] + len(self.pieces[i][0]):
            return -1
        return i

    def chain(self, i: int) -> tuple[str, ...]:
        got = self._chains.get(i)
        if got is None:
            piece = self.pieces[i]
            got = piece[1] if self.parent is None else self.parent.chain(piece[2]) + piece[1]
            self._chains[i] = got
        return got

    def origin(self, i: int) -> int:
        """Offset in the original buffer of the outermost region ``i`` came from."""
        gen, piece = self, self.pieces[i]
        while (up := gen.parent) is not None and up.parent is not None:
            gen, piece = up, up.pieces[piece[2]]
        return piece[3]
