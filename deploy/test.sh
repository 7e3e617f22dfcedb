#!/usr/bin/env bash
# Runs Guildhall's whole test suite on a fresh machine: installs what the
# tests need (protoc for the generated-code check, protoc-gen-go), then
# checks formatting, vets and runs every test with the race detector.
# Real servers the tests use are started by the tests themselves (NATS is
# embedded in-process). With CI=true a missing dependency fails the run.
#
#   deploy/test.sh            # everything
#   deploy/test.sh ./link/... # only some packages
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
		echo "need root to run: $*" >&2; return 1; fi
}

if ! command -v protoc >/dev/null; then
	echo "== installing protoc (Debian protobuf-compiler)"
	as_root apt-get update -qq >/dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
fi
export PATH="$(go env GOPATH)/bin:$PATH"
if [ "$(protoc-gen-go --version 2>/dev/null)" != "protoc-gen-go $PROTOC_GEN_GO_VERSION" ]; then
	echo "== installing protoc-gen-go $PROTOC_GEN_GO_VERSION"
	GOFLAGS= go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>&1 || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
go test -race -count=1 -timeout 20m "${pkgs[@]}"
