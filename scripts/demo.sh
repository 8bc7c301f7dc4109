#!/usr/bin/env bash
# The README's main job on the embedded defaults: set the host up, build the
# images, analyze the example firmware (the 2016 Adups FOTA replay) and print
# the verdict.  Exit 0 when the analysis ran, whatever its verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
.venv/bin/honeyphone images build twin fakenet
bundle="${1:-examples/firmware/adups-5.3}"
out="${HONEYPHONE_DEMO_OUT:-$PWD/demo-output}"
rm -rf "$out"
set +e
.venv/bin/honeyphone analyze "$bundle" --artifacts "$out" --report-json "$out/report.json"
rc=$?
set -e
case $rc in
  0) echo "verdict: clean (exit 0)";;
  1) echo "verdict: LEAK (exit 1) -- report: $out/report.json";;
  3) echo "verdict: suspicious (exit 3) -- report: $out/report.json";;
  *) echo "the analysis could not be completed (exit $rc)"; exit "$rc";;
esac
