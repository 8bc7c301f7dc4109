#!/bin/sh
# Put the emulator and the system image under $ANDROID_SDK_ROOT.
# The staged sdk/ (or sdk/sdk.zip) is used when present; only SDK_DOWNLOAD=1
# fetches the packages from Google's SDK repository (checksum-pinned tools).
set -eu
SDK="$ANDROID_SDK_ROOT"
SYSREL="system-images/android-${API_LEVEL}/google_apis/x86_64"
SYSPKG="system-images;android-${API_LEVEL};google_apis;x86_64"

if [ -f "$SDK/sdk.zip" ]; then
    mkdir -p /tmp/sdk-unzip
    unzip -q "$SDK/sdk.zip" -d /tmp/sdk-unzip
    rm -f "$SDK/sdk.zip"
    root=$(dirname "$(dirname "$(find /tmp/sdk-unzip -path "*/$SYSREL/system.img" | head -n 1)")")
    root=${root%/system-images/android-${API_LEVEL}/google_apis}
    [ -d "$root/emulator" ] || { echo "sdk.zip: no emulator/ next to $SYSREL" >&2; exit 1; }
    cp -a "$root/." "$SDK/"
    rm -rf /tmp/sdk-unzip
fi

if [ ! -f "$SDK/$SYSREL/system.img" ] || [ ! -x "$SDK/emulator/emulator" ]; then
    if [ "${SDK_DOWNLOAD:-0}" != 1 ]; then
        echo "error: $SDK lacks emulator/emulator or $SYSREL/system.img and SDK_DOWNLOAD is not 1." >&2
        echo "Build with 'honeyphone images build android --api $API_LEVEL' (it stages a local SDK)," >&2
        echo "or with --download on a machine with internet." >&2
        exit 1
    fi
    echo "downloading the Android command-line tools and $SYSPKG"
    curl -fsSL -o /tmp/cmdline-tools.zip "$CMDLINE_TOOLS_URL"
    echo "$CMDLINE_TOOLS_SHA256  /tmp/cmdline-tools.zip" | sha256sum -c -
    mkdir -p /tmp/ct "$SDK/cmdline-tools"
    unzip -q /tmp/cmdline-tools.zip -d /tmp/ct
    mv /tmp/ct/cmdline-tools "$SDK/cmdline-tools/latest"
    yes | "$SDK/cmdline-tools/latest/bin/sdkmanager" --sdk_root="$SDK" --licenses >/dev/null
    "$SDK/cmdline-tools/latest/bin/sdkmanager" --sdk_root="$SDK" "emulator" "platform-tools" "$SYSPKG"
    rm -rf "$SDK/cmdline-tools" /tmp/ct /tmp/cmdline-tools.zip
fi

chmod 0755 "$SDK/emulator/emulator" "$SDK/emulator/qemu/linux-x86_64/"* 2>/dev/null || true
[ -x "$SDK/platform-tools/adb" ] || echo "note: no platform-tools/adb in the image; launch.sh skips its in-container pop-up watch"
grep -h "^Pkg.Revision" "$SDK/emulator/source.properties" "$SDK/$SYSREL/source.properties" 2>/dev/null || true
