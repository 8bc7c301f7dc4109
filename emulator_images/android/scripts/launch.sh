#!/bin/sh
# Start the emulator headless and make its adb reachable on the container's
# own address (5555).  The guest's traffic goes through the emulator's NAT
# out of this container's interface, where the host routes it to the
# analysis' fakenet; DNS goes to $HONEYPHONE_DNS (the fakenet) directly.
set -eu
. /opt/honeyphone/emulator-args.sh
EMU="$ANDROID_SDK_ROOT/emulator/emulator"
SNAPSHOT=honeyphone-boot

rm -f "$ANDROID_AVD_HOME/$HONEYPHONE_AVD.avd/"*.lock
IP=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
[ -n "$IP" ] || { echo "launch.sh: the container has no IPv4 address" >&2; exit 1; }
# Bound to the container address only, so the in-container adb (5555-5585
# loopback scan) never sees this forward as a second emulator.
socat -d "tcp-listen:5555,bind=$IP,reuseaddr,fork" tcp:127.0.0.1:5557 &

set -- $(emulator_args)
if [ -d "$ANDROID_AVD_HOME/$HONEYPHONE_AVD.avd/snapshots/$SNAPSHOT" ]; then
    set -- "$@" -snapshot "$SNAPSHOT" -no-snapshot-save
else
    set -- "$@" -no-snapshot
fi
# shellcheck disable=SC2086
set -- "$@" ${EMULATOR_EXTRA_ARGS:-}

if [ -x "$ANDROID_SDK_ROOT/platform-tools/adb" ]; then
    /opt/honeyphone/boot-watch.sh &
fi
echo "launch.sh: $EMU $*"
exec "$EMU" "$@"
