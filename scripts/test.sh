#!/usr/bin/env bash
# The README's test command: set the host up, build the images, then run every
# test (unit, property and integration on the real Docker engine, twin and adb).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
.venv/bin/honeyphone images build twin fakenet
scripts/check_proto.sh          # generated gRPC code must match the .proto sources
.venv/bin/mypy sandbox workers
exec .venv/bin/pytest -n "${HONEYPHONE_TEST_WORKERS:-auto}" "$@" tests
