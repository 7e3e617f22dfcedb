#!/usr/bin/env bash
# Starts a real Redis (Debian's redis-server) on loopback for Guildhall's
# storage tests. No persistence: the data lives in memory and is gone on stop.
#
#   deploy/testdeps/redis.sh start  [PORT]   # prints REDIS_ADDR=127.0.0.1:PORT
#   deploy/testdeps/redis.sh status [PORT]   # exit 0 if running, 3 if not
#   deploy/testdeps/redis.sh stop   [PORT]
#
# PORT defaults to 6390. State (pid file, log) lives in
# ${GUILDHALL_TESTDEPS_DIR:-/tmp/guildhall-testdeps}/redis-PORT.
# Installs redis-server with apt-get if it is missing (needs root or sudo).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cmd=${1:-}
port=${2:-${GUILDHALL_REDIS_PORT:-6390}}
check_port "$port"
inst="$TESTDEPS_DIR/redis-$port"
pidfile="$inst/redis.pid"
logfile="$inst/redis.log"
start_timeout=${GUILDHALL_REDIS_START_TIMEOUT:-30}
PID_MATCH="redis-server 127.0.0.1:$port " # how a daemonized redis-server names itself

ping() { [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; }

ensure_redis() {
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		log "installing redis-server (Debian)"
		apt_install redis-server || die "apt-get install redis-server failed"
	fi
}

start() {
	ensure_redis
	mkdir -p "$inst"
	if pid_alive "$pidfile" && ping; then
		echo "REDIS_ADDR=127.0.0.1:$port"
		return 0
	fi
	rm -f "$pidfile"
	if port_open "$port"; then
		die "127.0.0.1:$port is already taken by another process; pick another port"
	fi
	: >"$logfile"
	redis-server --bind 127.0.0.1 --port "$port" \
		--save "" --appendonly no \
		--daemonize yes --pidfile "$pidfile" --dir "$inst" --logfile "$logfile" \
		|| { tail -n 20 "$logfile" >&2; die "redis-server failed to start"; }
	local deadline=$((SECONDS + start_timeout))
	until ping; do
		if [ $SECONDS -ge $deadline ]; then
			tail -n 20 "$logfile" >&2
			kill_group "$pidfile" 5
			die "redis on 127.0.0.1:$port did not answer PING within ${start_timeout}s"
		fi
		sleep 0.1
	done
	echo "REDIS_ADDR=127.0.0.1:$port"
}

stop() {
	if pid_alive "$pidfile"; then
		kill_group "$pidfile" 10
		log "redis on 127.0.0.1:$port stopped"
	else
		rm -f "$pidfile"
		log "redis on 127.0.0.1:$port was not running"
	fi
}

status() {
	if pid_alive "$pidfile" && command -v redis-cli >/dev/null && ping; then
		echo "REDIS_ADDR=127.0.0.1:$port"
		log "running, pid $(cat "$pidfile")"
	else
		log "not running on 127.0.0.1:$port"
		return 3
	fi
}

case "$cmd" in
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: $0 start|stop|status [PORT]" >&2; exit 2 ;;
esac
