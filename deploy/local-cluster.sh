#!/usr/bin/env bash
# Runs Guildhall as a cluster of separate processes on this machine, in
# distributed mode (--store=cql), against the CQL and Redis servers of
# deploy/testdeps (started if CQL_HOSTS / REDIS_ADDR are not set):
#
#   hub        subscribe + message, and the embedded NATS (--nats-listen)
#   message-2  message                 (joins the hub's NATS: --nats-url)
#   api        api                     http://127.0.0.1:PORT/api/v1
#   link-1     link                    ws://127.0.0.1:PORT+1/gateway
#   link-2     link                    ws://127.0.0.1:PORT+2/gateway
#
# (hub listens on PORT+3, message-2 on PORT+4, NATS on NATS_PORT.)
#
#   deploy/local-cluster.sh start    # build, migrate, start, wait until healthy
#   deploy/local-cluster.sh status   # which processes run
#   deploy/local-cluster.sh stop     # SIGTERM each (links first, hub last)
#
# Environment: GUILDHALL_CLUSTER_DIR (state, logs; default
# /tmp/guildhall-local-cluster), GUILDHALL_CLUSTER_PORT (default 18080),
# GUILDHALL_CLUSTER_NATS_PORT (default 14222), GUILDHALL_CLUSTER_KEYSPACE
# (default guildhall_local), GUILDHALL_CLUSTER_BIN (a built guildhall to
# run instead of building one), CQL_HOSTS, REDIS_ADDR. On stdout, start prints
# only KEY=VALUE lines (API=..., GATEWAYS=..., NATS_URL=...); progress goes
# to stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${GUILDHALL_CLUSTER_DIR:-/tmp/guildhall-local-cluster}"
port="${GUILDHALL_CLUSTER_PORT:-18080}"
nats_port="${GUILDHALL_CLUSTER_NATS_PORT:-14222}"
keyspace="${GUILDHALL_CLUSTER_KEYSPACE:-guildhall_local}"
bin="${GUILDHALL_CLUSTER_BIN:-$dir/bin/guildhall}"

# name, port, roles, node id: start order (stop goes in reverse).
procs=(
	"hub $((port + 3)) subscribe,message 1"
	"message-2 $((port + 4)) message 2"
	"api $port api 3"
	"link-1 $((port + 1)) link 4"
	"link-2 $((port + 2)) link 5"
)

log() { echo "local-cluster: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# running NAME: true when NAME's pid file names a live guildhall of ours.
running() {
	local pid
	pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "^$bin "
}

healthy() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"; }

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
	for p in "${procs[@]}"; do
		read -r name _ <<<"$p"
		running "$name" && die "$name already runs (pid $(cat "$dir/$name.pid")); stop first"
	done
	command -v curl >/dev/null || die "needs curl (health checks)"
	for p in "${procs[@]}"; do
		read -r _ hport _ <<<"$p"
		if port_open "$hport"; then die "port $hport is taken; set GUILDHALL_CLUSTER_PORT"; fi
	done
	if port_open "$nats_port"; then die "port $nats_port is taken; set GUILDHALL_CLUSTER_NATS_PORT"; fi
	mkdir -p "$dir/bin" "$dir/logs"
	# From here on, a failure stops whatever was started.
	trap 'log "start failed: stopping what was started"; stop' EXIT
	if [ -z "${CQL_HOSTS:-}" ]; then
		log "starting the CQL server (deploy/testdeps/cql.sh)"
		eval "$("$root/deploy/testdeps/cql.sh" start)"
	fi
	if [ -z "${REDIS_ADDR:-}" ]; then
		log "starting Redis (deploy/testdeps/redis.sh)"
		eval "$("$root/deploy/testdeps/redis.sh" start)"
	fi
	if [ -z "${GUILDHALL_CLUSTER_BIN:-}" ]; then
		log "building $bin"
		(cd "$root" && go build -o "$bin" ./cmd/guildhall)
	fi

	export GUILDHALL_STORE=cql GUILDHALL_CQL_HOSTS="$CQL_HOSTS" GUILDHALL_CQL_KEYSPACE="$keyspace" \
		GUILDHALL_REDIS_ADDR="$REDIS_ADDR"
	log "migrating keyspace $keyspace on $CQL_HOSTS"
	"$bin" migrate >&2

	local nats_url="nats://127.0.0.1:$nats_port"
	for p in "${procs[@]}"; do
		read -r name hport roles node <<<"$p"
		local args=(--addr "127.0.0.1:$hport" --roles "$roles" --node-id "$node" --data-dir "$dir/data/$name")
		if [ "$name" = hub ]; then
			args+=(--nats-listen "127.0.0.1:$nats_port")
		else
			args+=(--nats-url "$nats_url")
		fi
		if [ "$roles" = link ]; then args+=(--link-id "$name"); fi
		log "starting $name: guildhall ${args[*]}"
		nohup "$bin" "${args[@]}" >"$dir/logs/$name.log" 2>&1 &
		echo $! >"$dir/$name.pid"
		local i
		for i in $(seq 1 300); do
			healthy "$hport" 2>/dev/null && break
			running "$name" || die "$name exited; its log ($dir/logs/$name.log) ends with:$(echo; tail -n 20 "$dir/logs/$name.log")"
			[ "$i" = 300 ] && die "$name not healthy after 30s; see $dir/logs/$name.log"
			sleep 0.1
		done
	done
	trap - EXIT
	log "running; logs in $dir/logs"
	echo "API=http://127.0.0.1:$port/api/v1"
	echo "GATEWAYS=ws://127.0.0.1:$((port + 1))/gateway,ws://127.0.0.1:$((port + 2))/gateway"
	echo "NATS_URL=$nats_url"
}

stop() {
	local i n
	for ((n = ${#procs[@]} - 1; n >= 0; n--)); do
		read -r name _ <<<"${procs[$n]}"
		if ! running "$name"; then
			rm -f "$dir/$name.pid"
			continue
		fi
		local pid
		pid=$(cat "$dir/$name.pid")
		log "stopping $name (pid $pid)"
		kill -TERM "$pid"
		for i in $(seq 1 300); do
			running "$name" || break
			if [ "$i" = 300 ]; then
				log "$name still runs after 30s: killing it"
				kill -KILL "$pid" 2>/dev/null || true
			fi
			sleep 0.1
		done
		rm -f "$dir/$name.pid"
	done
}

status() {
	local up=0
	for p in "${procs[@]}"; do
		read -r name hport roles _ <<<"$p"
		if running "$name"; then
			up=$((up + 1))
			echo "$name: running (pid $(cat "$dir/$name.pid"), http 127.0.0.1:$hport, roles $roles)"
		else
			echo "$name: stopped"
		fi
	done
	[ "$up" = "${#procs[@]}" ] || exit 3
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 start|stop|status" ;;
esac
