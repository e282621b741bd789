#!/usr/bin/env bash
# Gathers what the H100 machine needs to run a build made here (Debian 12): the binaries,
# libml.so, and the few shared libraries its Ubuntu image lacks (libcpp-httplib and the
# brotli libraries it links). Binaries find them through their $ORIGIN rpath.
# usage: tools/device_bundle.sh [BUILD_DIR] [OUT_DIR]   (default: build .device/bin)
set -euo pipefail
build=${1:-build}
out=${2:-.device/bin}
rm -rf "$out"
mkdir -p "$out"
cp -a "$build"/bin/. "$out"/
for lib in libcpp-httplib.so.0.11 libbrotlicommon.so.1 libbrotlidec.so.1 libbrotlienc.so.1; do
  cp -L "/lib/x86_64-linux-gnu/$lib" "$out/"
done
du -sh "$out"
