#!/usr/bin/env bash
# Runs Apache Cassandra for Floodgate's tests: fetched from Maven Central (cassandra-all and
# its runtime dependencies, see pom.xml) into a cache folder and started on the machine's JDK
# (17) with a small heap, loopback addresses and fast-startup settings.
#
#   run.sh fetch                                   download the jars (idempotent)
#   run.sh start DIR [ADDR] [NATIVE] [STORAGE] [SEEDS] [HEAP]
#                                                  start one node with its data and log in DIR;
#                                                  returns once the CQL port answers; prints the PID
#   run.sh stop DIR                                stop the node started in DIR (by its PID)
#   run.sh kill DIR                                kill -9 the node started in DIR (fault tests)
#
# Defaults: ADDR 127.0.0.1, NATIVE 22042, STORAGE 22070, SEEDS = ADDR:STORAGE, HEAP 512M.
# Environment: CASSANDRA_VERSION (default from pom.xml), FLOODGATE_CACHE (default
# ~/.cache/floodgate), CASSANDRA_START_TIMEOUT seconds (default 180), CASSANDRA_RING_DELAY_MS
# (default 1000; how long a joining node waits for gossip — raise it for a cluster on a busy
# machine), CASSANDRA_STOP_WITH_PID
# (stop the node once that process exits: CI passes its own shell's PID, so the node never
# outlives the run even when a step fails).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
version="${CASSANDRA_VERSION:-$(sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$here/pom.xml")}"
cache="${FLOODGATE_CACHE:-$HOME/.cache/floodgate}/cassandra"
lib="$cache/lib-$version"

die() { echo "cassandra/run.sh: $*" >&2; exit 1; }

fetch() {
  if [[ -f "$lib/.complete" ]]; then return 0; fi
  command -v java >/dev/null || die "java not found (Cassandra $version needs JDK 11 or 17)"
  if ! command -v mvn >/dev/null; then
    command -v apt-get >/dev/null || die "mvn not found"
    echo "cassandra/run.sh: installing maven" >&2
    (apt-get update -qq && apt-get install -y -qq maven) >&2 || die "could not install maven"
  fi
  rm -rf "$lib.tmp"
  mvn -q -B -f "$here/pom.xml" -Dcassandra.version="$version" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib.tmp" >&2 \
    || die "maven could not fetch cassandra-all $version"
  rm -rf "$lib" && mv "$lib.tmp" "$lib" && touch "$lib/.complete"
}

# await_port HOST PORT PID TIMEOUT: succeeds once HOST:PORT accepts a TCP connection; fails as
# soon as PID exits or TIMEOUT seconds pass. Polls the port, so no fixed sleep decides readiness.
await_port() {
  local host=$1 port=$2 pid=$3 timeout=$4 deadline=$((SECONDS + $4))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

write_yaml() {
  local dir=$1 addr=$2 native=$3 storage=$4 seeds=$5
  cat >"$dir/conf/cassandra.yaml" <<EOF
# Written by scripts/cassandra/run.sh for tests: one small node on loopback.
cluster_name: floodgate-test
num_tokens: 8
allocate_tokens_for_local_replication_factor: 3
auto_bootstrap: false
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
listen_address: $addr
rpc_address: $addr
native_transport_port: $native
storage_port: $storage
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$seeds"
endpoint_snitch: SimpleSnitch
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
data_file_directories: [$dir/data]
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
concurrent_compactors: 1
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
native_transport_max_threads: 32
hinted_handoff_enabled: true
max_hint_window: 1h
read_request_timeout: 5000ms
write_request_timeout: 2000ms
range_request_timeout: 10000ms
request_timeout: 10000ms
# Tests create and drop many tables (one per time slice); no snapshot on drop keeps disk small.
auto_snapshot: false
snapshot_on_repaired_data_mismatch: false
dynamic_snitch: true
start_native_transport: true
storage_compatibility_mode: NONE
EOF
  cat >"$dir/conf/logback.xml" <<EOF
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$dir/log/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
</configuration>
EOF
}

start() {
  local dir=${1:?start needs DIR} addr=${2:-127.0.0.1} native=${3:-22042} storage=${4:-22070}
  local seeds=${5:-} heap=${6:-512M}
  [[ -n "$seeds" ]] || seeds="$addr:$storage"
  fetch
  mkdir -p "$dir"/{conf,data,commitlog,saved_caches,hints,cdc_raw,log}
  dir="$(cd "$dir" && pwd)"
  if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    die "a node is already running from $dir (pid $(cat "$dir/pid"))"
  fi
  # A port answered by someone else's node would pass await_port below and
  # leave the caller talking to a node that is not ours (and may stop).
  local port
  for port in "$native" "$storage"; do
    if (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then
      die "$addr:$port is already in use by another process; pick free ports"
    fi
  done
  write_yaml "$dir" "$addr" "$native" "$storage" "$seeds"
  # JVM flags: Cassandra's conf/jvm-server.options and conf/jvm17-server.options (Java 17
  # module access for Cassandra, Netty and Chronicle), minus what only suits big dedicated hosts
  # (AlwaysPreTouch, NUMA), plus settings that make an empty single-purpose test node start
  # fast (unsafesystem: system tables are not fsynced, so schema changes are quick; test only).
  local opts=(
    -Xms"$heap" -Xmx"$heap" -Xss256k
    -ea -da:net.openhft...
    -XX:+UseThreadPriorities -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=4m
    -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300
    -XX:InitiatingHeapOccupancyPercent=70 -XX:ActiveProcessorCount=2
    -XX:+HeapDumpOnOutOfMemoryError -XX:+ExitOnOutOfMemoryError -XX:HeapDumpPath="$dir/log"
    -Djava.net.preferIPv4Stack=true
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
    -javaagent:"$(ls "$lib"/jamm-*.jar | head -1)"
    -Dcassandra-foreground=yes
    -Dcassandra.config="file://$dir/conf/cassandra.yaml"
    -Dlogback.configurationFile="file://$dir/conf/logback.xml"
    -Dcassandra.logdir="$dir/log"
    -Dcassandra.storagedir="$dir/data"
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.ring_delay_ms="${CASSANDRA_RING_DELAY_MS:-1000}"
    -Dcassandra.superuser_setup_delay_ms=0
    -Dcassandra.available_processors=2
    -Dcassandra.migration_task_wait_in_seconds=1
    -Dcassandra.unsafesystem=true
  )
  nohup java "${opts[@]}" -cp "$dir/conf:$lib/*" org.apache.cassandra.service.CassandraDaemon \
    >"$dir/log/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pid"
  if ! await_port "$addr" "$native" "$pid" "${CASSANDRA_START_TIMEOUT:-180}"; then
    echo "cassandra/run.sh: node in $dir did not open $addr:$native; last log lines:" >&2
    tail -n 40 "$dir/log/system.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
    kill -9 "$pid" 2>/dev/null || true
    exit 1
  fi
  if [[ -n "${CASSANDRA_STOP_WITH_PID:-}" ]]; then
    # A detached watchdog: polls the owner once a second and stops the node after it exits.
    nohup bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
      kill -0 "$2" 2>/dev/null && exec bash "$3" stop "$4"' _ \
      "$CASSANDRA_STOP_WITH_PID" "$pid" "$here/run.sh" "$dir" >/dev/null 2>&1 </dev/null &
  fi
  echo "$pid"
}

stop() {
  local dir=${1:?stop needs DIR} sig=${2:-TERM}
  [[ -f "$dir/pid" ]] || return 0
  local pid
  pid="$(cat "$dir/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -s "$sig" "$pid" 2>/dev/null || true
    # Wait for the process to go (bounded), then make sure.
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid"
}

cmd=${1:-}
shift || true
case "$cmd" in
  fetch) fetch ;;
  start) start "$@" ;;
  stop) stop "$1" TERM ;;
  kill) stop "$1" KILL ;;
  *) die "usage: run.sh fetch | start DIR [ADDR] [NATIVE] [STORAGE] [SEEDS] [HEAP] | stop DIR | kill DIR" ;;
esac
