"""Time canary generation, form derivation and JSON at scale.

    .venv/bin/python benchmarks/bench_canary.py [--items 10000] [--locale en_US]
"""

from __future__ import annotations

import argparse
import time

from sandbox.canary import CanarySpec, build_forms, from_json, generate, to_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000, help="items per kind")
    parser.add_argument("--locale", default="en_US")
    args = parser.parse_args()
    spec = CanarySpec(
        seed=1, analysis_id="bench", contacts=args.items, sms=args.items, calls=args.items,
        locale=args.locale,
    )
    started = time.perf_counter()
    canaries = generate(spec)
    generated = time.perf_counter()
    forms = build_forms(canaries)
    formed = time.perf_counter()
    text = to_json(canaries)
    assert from_json(text) == canaries
    done = time.perf_counter()
    print(f"{args.items} items/kind, {args.locale}: generate {generated - started:.2f}s, "
          f"{len(forms)} forms {formed - generated:.2f}s, JSON round trip {done - formed:.2f}s "
          f"({len(text) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
