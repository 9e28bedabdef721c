#!/usr/bin/env bash
# The producer benchmark against a PostgreSQL whose WAL flushes wait longer, as on a network volume.
#
# usage: benchmarks/slow-wal/run.sh DELAYS_US [producer benchmark arguments]
#   e.g. benchmarks/slow-wal/run.sh 0,1000,2000 --writers 16,64 --rounds 3 --variants a,b512,c512
#
# For each delay in turn: a private PostgreSQL (initdb defaults, port 5499, in a temporary directory)
# started with slowsync.c preloaded, so that every fsync and fdatasync takes that many microseconds
# more, then the producer benchmark against it (OUTBOX_TEST_JDBC_URL), its report written to
# benchmarks/target/slow-wal-<delay>us.md. The server's CPU cost per transaction is unchanged; only
# the time a commit waits for its WAL flush grows. 0 runs the same server without delay.
# Needs a C compiler and the PostgreSQL server binaries; run `./mvnw -q install -DskipTests` first.
set -euo pipefail
if [ $# -lt 1 ]; then
    sed -n '2,14p' "$0"
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
delays=$1
shift
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/initdb" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
fi
if [ ! -x "$bindir/initdb" ]; then
    echo "no PostgreSQL server binaries found (initdb): install them or put pg_config on the PATH" >&2
    exit 1
fi
port=5499
work=$(mktemp -d)
chmod 755 "$work"
mkdir "$work/run"
if [ "$(id -u)" = 0 ]; then
    chown postgres "$work/run"
fi
cc -shared -fPIC -O2 -o "$work/slowsync.so" "$here/slowsync.c" -ldl
# PostgreSQL refuses to run as root: as root, the server runs as the postgres user
as_server() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
stop() {
    as_server "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
}
trap 'stop; rm -rf "$work"' EXIT
IFS=, read -ra list <<<"$delays"
for delay in "${list[@]}"; do
    stop
    rm -rf "$work/data"
    mkdir "$work/data"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$work/data"
    fi
    as_server "$bindir/initdb" -D "$work/data" -U postgres -A trust >/dev/null
    as_server env LD_PRELOAD="$work/slowsync.so" SLOW_SYNC_US="$delay" \
        "$bindir/pg_ctl" -D "$work/data" -l "$work/run/server.log" -w \
        -o "-p $port -k $work/run -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    echo "== fsync and fdatasync + ${delay} us ($(date -u +%H:%M:%S) UTC)"
    mkdir -p "$root/benchmarks/target"
    OUTBOX_TEST_JDBC_URL="jdbc:postgresql://127.0.0.1:$port/postgres?user=postgres" \
        "$root/mvnw" -q -pl benchmarks exec:exec@bench -Dbench.main=dev.outbox.bench.producer.ProducerBenchmark \
        -Dbench.args="$* --out $root/benchmarks/target/slow-wal-${delay}us.md"
done
