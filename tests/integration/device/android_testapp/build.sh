#!/bin/sh
# Build the contract-suite test APK with an Android SDK (build-tools + a platform):
#   ANDROID_SDK_ROOT=/path/to/sdk ./build.sh OUT.apk
# Needs javac and keytool (a JDK), build-tools (d8, aapt, zipalign, apksigner)
# and platforms;android-NN (android.jar).  Used by the contract suite when
# HONEYPHONE_ANDROID_TEST_APK is not given.
set -eu
OUT=${1:?usage: build.sh OUT.apk}
HERE=$(cd "$(dirname "$0")" && pwd)
SDK=${ANDROID_SDK_ROOT:-${ANDROID_HOME:?set ANDROID_SDK_ROOT}}
BT=$(ls -d "$SDK"/build-tools/* 2>/dev/null | sort -V | tail -n 1)
PLATFORM=$(ls -d "$SDK"/platforms/android-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$BT" ] && [ -n "$PLATFORM" ] || { echo "need build-tools and platforms in $SDK" >&2; exit 2; }
JAR="$PLATFORM/android.jar"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/classes" "$WORK/dex"
javac -source 8 -target 8 -bootclasspath "$JAR" -classpath "$JAR" -d "$WORK/classes" \
    $(find "$HERE/src" -name '*.java')
"$BT/d8" --min-api 30 --lib "$JAR" --output "$WORK/dex" $(find "$WORK/classes" -name '*.class')
"$BT/aapt" package -f -M "$HERE/AndroidManifest.xml" -I "$JAR" -F "$WORK/unsigned.apk"
(cd "$WORK/dex" && zip -q "$WORK/unsigned.apk" classes.dex)
"$BT/zipalign" -f 4 "$WORK/unsigned.apk" "$WORK/aligned.apk"
keytool -genkeypair -keystore "$WORK/k.jks" -storepass honeyphone -keypass honeyphone -alias k \
    -keyalg RSA -keysize 2048 -validity 3650 -dname "CN=Honeyphone contract" >/dev/null 2>&1
"$BT/apksigner" sign --ks "$WORK/k.jks" --ks-pass pass:honeyphone --key-pass pass:honeyphone \
    --out "$OUT" "$WORK/aligned.apk"
echo "built $OUT"
