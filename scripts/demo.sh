#!/usr/bin/env bash
# The README's main job on the embedded defaults: set the host up, build the
# images, then run a regression campaign: the fixed Adups FOTA 5.4 against the
# leaking 5.3 as baseline, both under one scenario, for 80 device hours so
# 5.3's 72 h upload fires with margin on a loaded machine.  With no farm at the default address the campaign
# starts an embedded orchestrator and local worker for its duration.  Prints
# the verdict table, what 5.4 fixed, the findings, and the paths of the HTML
# report and each version's reports.  Exit 0 when the campaign ran, whatever
# the verdicts; non-zero only when it could not run (or a version's analysis
# could not complete).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
.venv/bin/honeyphone images build twin fakenet
out="${HONEYPHONE_DEMO_OUT:-$PWD/demo-output}"
hours="${HONEYPHONE_DEMO_HOURS:-80}"
rm -rf "$out"
mkdir -p "$out"
set +e
.venv/bin/honeyphone campaign examples/firmware/adups-5.4 --baseline examples/firmware/adups-5.3 \
  --hours "$hours" --html "$out/campaign.html" --junit "$out/campaign.xml" --reports "$out/reports"
rc=$?
set -e
case $rc in
  0) echo; echo "campaign ran: every version clean (exit 0)";;
  1) echo; echo "campaign ran: a version leaks (exit 1; the 5.3 baseline does)";;
  3) echo; echo "campaign ran: a version is suspicious (exit 3)";;
  *) echo "the campaign could not run or an analysis could not complete (exit $rc)"; exit "$rc";;
esac
echo "HTML report: $out/campaign.html"
