#!/usr/bin/env bash
# The README's test command: set the host up, build the images, then run every
# test (unit, property and integration on the real Docker engine, twin and adb).
#
# Tests marked `destructive` (the Docker daemon restart) disturb every
# container on the host, so the main parallel run skips them; once it has
# passed, they run alone, serially, with HONEYPHONE_DESTRUCTIVE_TESTS=1, but
# only when the engine is the dockerd that scripts/setup-host.sh started (so
# scripts/restart-dockerd.sh restarts exactly that daemon, the same way).
# The exit status is the main run's when it fails, else the destructive step's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
# The farm's images too (deploy/images/), for the Compose test: built here, before
# the parallel run, so no test worker waits on the build lock while they build.
.venv/bin/honeyphone images build twin fakenet postgres worker orchestrator
scripts/check_proto.sh          # generated gRPC code must match the .proto sources
.venv/bin/mypy sandbox workers

status=0
# --durations: every run says where its time went (the suite must stay under 20 minutes).
# --dist worksteal: an idle worker takes queued tests from the busy one, so a
# long integration test near the end does not leave the other worker idle.
env -u HONEYPHONE_DESTRUCTIVE_TESTS .venv/bin/pytest -n "${HONEYPHONE_TEST_WORKERS:-auto}" --dist worksteal --durations=40 "$@" tests || status=$?
[ "$status" -eq 0 ] || exit "$status"

if ! how=$(scripts/restart-dockerd.sh --how 2>&1); then
  echo "[test] destructive tests skipped: $how"
  exit 0
fi
if [ "$how" != setup-host ]; then
  echo "[test] destructive tests skipped: the Docker engine is managed by $how, not started by scripts/setup-host.sh;" \
       "run them on a machine of your own: HONEYPHONE_DESTRUCTIVE_TESTS=1 .venv/bin/pytest -n 0 -m destructive tests"
  exit 0
fi
echo "[test] destructive tests, alone and serially (they restart the dockerd scripts/setup-host.sh started)"
status=0
# The caller's options first, so that -n 0 and -m destructive win over theirs.
HONEYPHONE_DESTRUCTIVE_TESTS=1 .venv/bin/pytest "$@" -n 0 -m destructive -v -s tests || status=$?
if [ "$status" -eq 5 ]; then  # the caller's own selection left none
  echo "[test] no destructive test selected"
  exit 0
fi
exit "$status"
