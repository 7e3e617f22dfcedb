#!/bin/sh
# Regenerates the Go code of proto/*.proto into proto/guildhallpb.
# Usage: proto/generate.sh [OUTDIR]   (default: the directory of this script's guildhallpb)
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-go v1.36.12
# (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/guildhallpb}
mkdir -p "$out"
cd "$here"
protoc -I . --go_out="$out" --go_opt=paths=source_relative types.proto gateway.proto bus.proto
