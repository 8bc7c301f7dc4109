#!/usr/bin/env bash
# CI guard: regenerate the protobuf code into a temp dir and fail when it
# differs from the committed sandbox/api/gen/ (someone edited a .proto without
# running scripts/gen_proto.sh, or edited generated code by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
scripts/gen_proto.sh "$tmp/gen" >/dev/null 2>&1 || { echo "check_proto: scripts/gen_proto.sh failed" >&2; scripts/gen_proto.sh "$tmp/gen2"; exit 1; }
if ! diff -r -u -x __pycache__ sandbox/api/gen "$tmp/gen"; then
  echo "check_proto: generated code is stale; run scripts/gen_proto.sh and commit sandbox/api/gen/" >&2
  echo "check_proto: tools: $("$PY" -m pip show grpcio-tools mypy-protobuf 2>/dev/null | grep -E '^(Name|Version)' | paste -sd' ')" >&2
  exit 1
fi
echo "check_proto: sandbox/api/gen is up to date"
