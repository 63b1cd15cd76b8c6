#!/usr/bin/env bash
# One command for the whole benchmark: bench/run.sh
# On a throwaway PostgreSQL with durable defaults (fsync on, synchronous_commit on) and on a
# SQLite file, in one run: the commit-rate limit (pgbench; pb-sqlite), acidic (acidic-bench),
# and the peers (sqlxmq, underway, apalis, graphile_worker), interleaved REPS times. Writes
# raw results and table.md to bench/results/<time>/ and prints the table.
# Env: REPS (3), N (10000 jobs), NWF (2000 workflows), DUR (10 s per limit point), BIG (200000:
# the backlog of the claim-cost check; 0 skips it), PEERS ("sqlxmq underway apalis graphile").
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}; N=${N:-10000}; NWF=${NWF:-2000}; DUR=${DUR:-10}; BIG=${BIG:-200000}
PEERS=${PEERS:-"sqlxmq underway apalis graphile"}
root=$PWD
out=$root/bench/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
export PB_OUT=$out/results.jsonl PB_ERR=$out/errors.log

echo "== building (release)"
cargo build --release -p acidic-bench
CARGO_TARGET_DIR=$root/target-peers bench/peers/build-all.sh
ACIDIC=$root/target/release/acidic-bench
PEERBIN=$root/target-peers/release

echo "== starting PostgreSQL (durable defaults)"
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pgdir=$(mktemp -d /tmp/acidic-bench-pg.XXXXXX)
port=$((40000 + $$ % 10000))
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$pgdir"
as_pg "$bindir/initdb" -D "$pgdir/data" -U postgres -A trust >/dev/null
cat >> "$pgdir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pgdir'
max_connections = 200
shared_preload_libraries = 'pg_stat_statements'
CONF
as_pg "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w start >/dev/null
trap 'as_pg "$bindir/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1; rm -rf "$pgdir"' EXIT
export PB_PG_BASE=postgres://postgres@127.0.0.1:$port
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGBIN=$bindir
"$bindir/psql" -q -d postgres -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"

{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
  echo "postgres: $("$bindir/postgres" --version), fsync=on, synchronous_commit=on, shared_buffers=128MB (defaults)"
  echo "sqlite: WAL, synchronous=NORMAL (the runtime's setting), file in ${TMPDIR:-/tmp}"
  echo "acidic: $(git rev-parse --short HEAD); REPS=$REPS N=$N NWF=$NWF DUR=$DUR"
} > "$out/machine.txt"
cat "$out/machine.txt"

echo "== the limit: pgbench (1, 4, 16 clients) and SQLite"
DUR=$DUR REPS=$REPS CLIENTS="1 4 16" SYNCS=on OUT=$out/pgbench.csv bench/peers/physical/pgbench-matrix.sh >/dev/null
# The physical floor of an enqueue: pgbench committing acidic's own INSERT (on the migrated
# schema, with its indexes and wake-up trigger) on one connection.
"$bindir/psql" -q -d postgres -c "DROP DATABASE IF EXISTS acidic_limit" -c "CREATE DATABASE acidic_limit"
for m in migrations/postgres/*.sql; do "$bindir/psql" -q -d acidic_limit -f "$m" >/dev/null; done
echo "rep,tps" > "$out/insert-limit.csv"
for rep in $(seq 1 "$REPS"); do
  "$bindir/psql" -q -d acidic_limit -c "CHECKPOINT" >/dev/null
  tps=$("$bindir/pgbench" -n -M prepared -f bench/enqueue-limit.sql -c 1 -T "$DUR" acidic_limit 2>&1 \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  echo "$rep,$tps" >> "$out/insert-limit.csv"
done
BIN=$PEERBIN/pb-sqlite DUR=$DUR REPS=$REPS SYNCS=NORMAL OUT=$out/sqlite.jsonl \
  DBFILE=${TMPDIR:-/tmp}/acidic-bench-limit.db bench/peers/physical/sqlite-matrix.sh >/dev/null

acidic() { # backend mode n c [variant]; ACIDIC_PREFETCH passes through
  PB_BACKEND=$1 PB_VARIANT=${5:-default} PB_LABEL=rep$rep timeout 1800 "$ACIDIC" "$2" "$3" "$4" >/dev/null 2>>"$PB_ERR" \
    || echo "FAILED: acidic $*" | tee -a "$PB_ERR"
}
peer() { # peer mode n c
  PB_LABEL=rep$rep timeout 900 "$PEERBIN/pb-$1" "$2" "$3" "$4" >/dev/null 2>>"$PB_ERR" \
    || echo "FAILED: $* ${PB_VARIANT:-} (rep $rep)" | tee -a "$PB_ERR"
}
for rep in $(seq 1 "$REPS"); do
  for backend in postgres sqlite; do
    echo "== rep $rep acidic on $backend $(date +%T)"
    acidic $backend enqueue-single "$N" 1
    acidic $backend enqueue-tx "$N" 1
    acidic $backend enqueue-bulk "$N" 1
    for c in 4 16; do
      acidic $backend drain "$N" $c noop
      acidic $backend drain "$N" $c insert
      # Tuned: claim up to 64 runs ahead of free slots (WorkerBuilder::prefetch).
      ACIDIC_PREFETCH=64 acidic $backend drain "$N" $c noop+prefetch64
      ACIDIC_PREFETCH=64 acidic $backend drain "$N" $c insert+prefetch64
      acidic $backend workflow "$NWF" $c
    done
    acidic $backend latency 2000 4
  done
  for p in $PEERS; do
    echo "== rep $rep $p $(date +%T)"
    peer "$p" enqueue-single "$N" 1
    case $p in sqlxmq|underway|apalis|graphile) peer "$p" enqueue-bulk "$N" 1 ;; esac
    if [ "$p" = graphile ]; then
      for c in 4 16; do
        PB_VARIANT=poll5ms GW_POLL_MS=5 peer "$p" drain "$N" "$c"
        PB_VARIANT=poll5ms+localqueue100+batch5ms GW_POLL_MS=5 GW_LOCAL_QUEUE=100 \
          GW_COMPLETE_BATCH_MS=5 peer "$p" drain "$N" "$c"
      done
      [ "$rep" = 1 ] && peer "$p" drain 200 4
    else
      for c in 4 16; do peer "$p" drain "$N" "$c"; done
    fi
    case $p in sqlxmq|underway|apalis) for c in 4 16; do peer "$p" workflow "$NWF" "$c"; done ;; esac
  done
done
if [ "$BIG" -gt 0 ]; then
  rep=big
  echo "== claim cost and memory against a $BIG-run backlog $(date +%T)"
  acidic postgres drain "$BIG" 16 noop
  acidic sqlite drain "$BIG" 16 noop
fi

python3 bench/summarize.py "$out" | tee "$out/table.md"
echo "results in $out"
