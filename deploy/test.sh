#!/usr/bin/env bash
# Runs Guildhall's whole test suite on a fresh machine: installs what the
# tests need (protoc for the generated-code check, protoc-gen-go), starts
# real Redis and CQL servers the stores are tested against
# (deploy/testdeps/redis.sh: Debian's redis-server;
# deploy/testdeps/cql.sh: Apache Cassandra 5.0 from Maven Central, else
# 2.1), then checks formatting, vets and runs every test with the race
# detector. NATS is embedded in the tests themselves. With CI=true a
# missing dependency fails the run instead of skipping tests.
#
# GUILDHALL_TEST_NO_SERVERS=1 skips starting servers (tests that need them
# then skip, or fail under CI=true). GUILDHALL_TEST_NO_WEB=1 skips the web
# client's tests (web/test.sh: npm ci, Vitest, headless Chromium).
#
#   deploy/test.sh            # everything
#   deploy/test.sh ./link/... # only some packages
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12

# shellcheck source=deploy/testdeps/lib.sh
. deploy/testdeps/lib.sh # as_root, apt_install (services not started)

apt_pkgs=()
command -v protoc >/dev/null || apt_pkgs+=(protobuf-compiler)
# The web client's browser tests drive Debian's Chromium (never a
# downloaded browser).
if [ "${GUILDHALL_TEST_NO_WEB:-}" != 1 ] && ! command -v "${CHROMIUM:-chromium}" >/dev/null; then
	apt_pkgs+=(chromium)
fi
# TestComposeNginx runs deploy/compose/nginx.conf in a real nginx.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_pkgs+=(nginx-light)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
	echo "== installing ${apt_pkgs[*]} (Debian)"
	apt_install "${apt_pkgs[@]}"
fi
export PATH="$(go env GOPATH)/bin:$PATH"
if [ "$(protoc-gen-go --version 2>/dev/null)" != "protoc-gen-go $PROTOC_GEN_GO_VERSION" ]; then
	echo "== installing protoc-gen-go $PROTOC_GEN_GO_VERSION"
	GOFLAGS= go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi

if [ "${GUILDHALL_TEST_NO_SERVERS:-}" != 1 ]; then
	echo "== starting Redis"
	set -a
	eval "$(deploy/testdeps/redis.sh start)"
	set +a
	echo "Redis at $REDIS_ADDR"
	echo "== starting the CQL server"
	set -a
	eval "$(deploy/testdeps/cql.sh start)"
	set +a
	echo "CQL server: $CQL_SERVER $CQL_RELEASE at $CQL_HOSTS"
	trap 'deploy/testdeps/cql.sh stop >/dev/null 2>&1 || true; deploy/testdeps/redis.sh stop >/dev/null 2>&1 || true' EXIT
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

# The web client: SDK unit tests, bundle staleness and browser tests
# against a real guildhall (web/test.sh). Skipped when only some Go
# packages were asked for, or with GUILDHALL_TEST_NO_WEB=1.
if [ $# -eq 0 ] && [ "${GUILDHALL_TEST_NO_WEB:-}" != 1 ]; then
	echo "== web client"
	web/test.sh
fi
