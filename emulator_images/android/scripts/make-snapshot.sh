#!/bin/sh
# Run once at image build time, with /dev/kvm and no network: cold-boot,
# wait for sys.boot_completed, save the quick-boot snapshot the launcher
# loads, then stop.  Same emulator arguments as launch.sh (emulator-args.sh),
# except that saving is allowed and nothing is loaded.
set -eu
. /opt/honeyphone/emulator-args.sh
EMU="$ANDROID_SDK_ROOT/emulator/emulator"
ADB="$ANDROID_SDK_ROOT/platform-tools/adb"
[ -x "$ADB" ] || { echo "make-snapshot: platform-tools/adb is needed" >&2; exit 1; }
set -- $(emulator_args)
"$EMU" "$@" -no-snapshot-load &
EMU_PID=$!
"$ADB" start-server >/dev/null
deadline=$(( $(date +%s) + 900 ))
until [ "$("$ADB" -s emulator-5556 shell getprop sys.boot_completed 2>/dev/null | tr -d '\r')" = 1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "make-snapshot: no boot in 900 s" >&2; kill "$EMU_PID"; exit 1; }
    kill -0 "$EMU_PID" 2>/dev/null || { echo "make-snapshot: the emulator exited" >&2; exit 1; }
    sleep 5
done
sleep 20  # let first-boot work (dex2oat, package scans) settle before freezing it
"$ADB" -s emulator-5556 emu avd snapshot save honeyphone-boot
"$ADB" -s emulator-5556 emu kill
wait "$EMU_PID" || true
ls -d "$ANDROID_AVD_HOME/$HONEYPHONE_AVD.avd/snapshots/honeyphone-boot"
