# Shared helpers for deploy/testdeps/*.sh. Sourced, not run.
# shellcheck shell=bash

TESTDEPS_DIR="${GUILDHALL_TESTDEPS_DIR:-/tmp/guildhall-testdeps}"
# shellcheck disable=SC2034 # used by the scripts that source this file
TESTDEPS_CACHE="$TESTDEPS_DIR/cache"

log() { echo "testdeps: $*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root to run: $*"; fi
}

# apt_install PKG...: installs Debian packages quietly, without letting the
# packages' maintainer scripts start their services (a policy-rc.d that says
# "no" is put in place for the install if the machine has none).
_apt_updated=
apt_install() {
	local policy=/usr/sbin/policy-rc.d added=
	if [ ! -e "$policy" ]; then
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
		added=1
	fi
	local rc=0
	{
		if [ -z "$_apt_updated" ]; then
			as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && _apt_updated=1
		fi &&
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
	} || rc=$?
	[ -n "$added" ] && as_root rm -f "$policy"
	return $rc
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# PID_MATCH: when set, pid_alive also requires this text in the process's
# command line, so a stale pid file whose pid now belongs to some other
# process (after a reboot, say) is never taken for our server, nor killed.
PID_MATCH=

# pid_alive PIDFILE: true if PIDFILE names a running process (of ours).
pid_alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	[ -z "$PID_MATCH" ] && return 0
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PID_MATCH"
}

# kill_group PIDFILE [GRACE_SECONDS]: TERMs the process group led by the
# pid in PIDFILE (the scripts start servers with setsid, so the group is the
# server and any children), waits, then KILLs what is left.
kill_group() {
	local pidfile=$1 grace=${2:-30} pid i
	pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
	pid=$(cat "$pidfile")
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid still alive after ${grace}s, sending KILL"
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$pidfile"
}

# check_port ARG: dies unless ARG is a TCP port number.
check_port() {
	case "$1" in '' | *[!0-9]*) die "not a port number: '$1'" ;; esac
	if [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then die "not a port number: '$1'"; fi
}
