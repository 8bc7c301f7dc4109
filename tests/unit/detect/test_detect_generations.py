"""Tests for sandbox.detect.generations: pieces of a generation in one buffer."""

from __future__ import annotations

from sandbox.detect.generations import SEP, SNIFF_ALL, Budget, Gen


def test_pieces_are_located_and_traced_to_the_callers_buffer() -> None:
    root = Gen.root(b"0123456789 payload")
    assert root.locate(0) == 0 and root.locate(17) == 0 and root.locate(18) == -1
    gen1 = Gen.from_children([(b"first", ("base64",), 0, 3, 9, SNIFF_ALL), (b"second", ("hex",), 0, 11, 18, 0)], root)
    assert gen1.big == SEP + b"first" + SEP + b"second" + SEP
    assert [gen1.locate(gen1.starts[i]) for i in (0, 1)] == [0, 1]
    assert gen1.locate(0) == -1 and gen1.locate(gen1.end(0)) == -1  # separators belong to no piece
    gen2 = Gen.from_children([(b"inner", ("gzip",), 1, gen1.starts[1], gen1.end(1), 0)], gen1)
    assert gen2.chain(0) == ("hex", "gzip")
    assert gen2.origin(0) == 11  # where the outermost region started in the caller's buffer
    assert gen2.depth == 2


def test_budget_refuses_what_it_cannot_hold() -> None:
    budget = Budget(10)
    assert budget.take(6) and not budget.take(5) and budget.exhausted and budget.left == 4
