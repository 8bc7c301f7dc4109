#!/usr/bin/env bash
# The README's main job.  For now: boot the twin with the example firmware,
# show over ADB that its service runs, then remove everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
.venv/bin/honeyphone images build twin fakenet
HP=.venv/bin/honeyphone
id="demo$(date +%s)"
trap '$HP device down "$id" >/dev/null 2>&1 || true' EXIT
$HP device up examples/firmware/hello --id "$id"
serial=$($HP device list | awk -v id="$id" '$1==id {print $3}')
echo "--- adb -s $serial shell hpctl status"
adb -s "$serial" shell hpctl status
sleep 1
echo "--- adb -s $serial shell cat /data/honeyphone/logs/hello.log"
adb -s "$serial" shell cat /data/honeyphone/logs/hello.log
