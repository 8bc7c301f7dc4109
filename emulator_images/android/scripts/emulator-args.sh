#!/bin/sh
# The emulator command line, shared by launch.sh and make-snapshot.sh so the
# snapshot is saved with exactly the configuration it is loaded with.
# Ports 5556/5557 (console/adb) stay on loopback; launch.sh forwards 5555.
emulator_args() {
    set -- -avd "$HONEYPHONE_AVD" -no-window -no-audio -no-boot-anim -gpu swiftshader_indirect \
        -writable-system -skip-adb-auth -ports 5556,5557 -accel on -netdelay none -netspeed full
    if [ -n "${HONEYPHONE_DNS:-}" ]; then
        # The emulator's NAT answers the guest's DNS (10.0.2.3) from this server only.
        set -- "$@" -dns-server "$HONEYPHONE_DNS"
    fi
    printf '%s\n' "$@"
}
