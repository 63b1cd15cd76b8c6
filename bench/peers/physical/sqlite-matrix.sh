#!/usr/bin/env bash
# SQLite commit-rate matrix (sqlx 0.8, WAL): synchronous {FULL,NORMAL} x
# script {update,select-update} x connections {1,4} x REPS, DUR seconds each.
set -eu
cd "$(dirname "$0")"
BIN=${BIN:-../target/release/pb-sqlite}
DUR=${DUR:-10}; REPS=${REPS:-3}; OUT=${OUT:-sqlite-results.jsonl}
SYNCS=${SYNCS:-"FULL NORMAL"}
DBFILE=${DBFILE:-${TMPDIR:-/tmp}/pb-sqlite-bench.db}
for rep in $(seq 1 "$REPS"); do
  for sync in $SYNCS; do
    for script in update select-update; do
      for c in 1 4; do
        "$BIN" "$sync" "$script" "$DUR" "$c" "$DBFILE" | sed "s/^{/{\"rep\":$rep,/" | tee -a "$OUT"
      done
    done
  done
done
