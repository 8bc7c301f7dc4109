#!/bin/sh
# One AVD, written directly (no avdmanager, hence no Java at run time).
# About 3 GB of guest RAM and 2 cores: what the README promises per emulator.
set -eu
AVD_DIR="$ANDROID_AVD_HOME/$HONEYPHONE_AVD.avd"
mkdir -p "$AVD_DIR" "$ANDROID_EMULATOR_HOME"
cat > "$ANDROID_AVD_HOME/$HONEYPHONE_AVD.ini" <<INI
avd.ini.encoding=UTF-8
path=$AVD_DIR
path.rel=avd/$HONEYPHONE_AVD.avd
target=android-$HONEYPHONE_API_LEVEL
INI
cat > "$AVD_DIR/config.ini" <<INI
AvdId=$HONEYPHONE_AVD
avd.ini.displayname=$HONEYPHONE_AVD
avd.ini.encoding=UTF-8
PlayStore.enabled=false
abi.type=x86_64
hw.cpu.arch=x86_64
hw.cpu.ncore=2
hw.ramSize=3072
vm.heapSize=512
disk.dataPartition.size=6G
image.sysdir.1=system-images/android-$HONEYPHONE_API_LEVEL/google_apis/x86_64/
tag.id=google_apis
tag.display=Google APIs
hw.gpu.enabled=yes
hw.gpu.mode=swiftshader_indirect
hw.lcd.width=1080
hw.lcd.height=1920
hw.lcd.density=440
hw.keyboard=yes
hw.mainKeys=no
hw.audioInput=no
hw.audioOutput=no
hw.camera.back=none
hw.camera.front=none
hw.gps=yes
hw.battery=yes
hw.sensors.orientation=yes
hw.sensors.proximity=yes
fastboot.forceColdBoot=no
runtime.network.latency=none
runtime.network.speed=full
INI
echo "AVD $HONEYPHONE_AVD for API $HONEYPHONE_API_LEVEL written to $AVD_DIR"
