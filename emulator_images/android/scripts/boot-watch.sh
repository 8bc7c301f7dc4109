#!/bin/sh
# Readiness is sys.boot_completed=1.  Once booted, clear the "not responding"
# pop-ups a freshly booted emulator shows (System UI is killed and restarts;
# the others take the default button), then touch /tmp/honeyphone-booted.
# The host does the same over adb (sandbox/device/android.py); this covers
# the image used on its own.
ADB="$ANDROID_SDK_ROOT/platform-tools/adb"
SERIAL=emulator-5556
"$ADB" start-server >/dev/null 2>&1
"$ADB" -s "$SERIAL" wait-for-device
until [ "$("$ADB" -s "$SERIAL" shell getprop sys.boot_completed 2>/dev/null | tr -d '\r')" = 1 ]; do
    sleep 2
done
for _ in 1 2 3 4 5; do
    focus=$("$ADB" -s "$SERIAL" shell dumpsys window 2>/dev/null | grep -m1 mCurrentFocus || true)
    case "$focus" in
        *"Not Responding: com.android.systemui"*)
            "$ADB" -s "$SERIAL" shell 'su 0 sh -c "kill \$(pidof com.android.systemui)"' ;;
        *"Not Responding"*|*"isn't responding"*|*ConversationListActivity*)
            "$ADB" -s "$SERIAL" shell input keyevent KEYCODE_ENTER ;;
        *) break ;;
    esac
    sleep 2
done
"$ADB" -s "$SERIAL" shell svc power stayon true >/dev/null 2>&1 || true
touch /tmp/honeyphone-booted
echo "boot-watch: $SERIAL booted"
