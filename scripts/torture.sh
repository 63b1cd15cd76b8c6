#!/usr/bin/env bash
# The crash and concurrency torture test (SPEC §10) on SQLite and on PostgreSQL.
#   scripts/torture.sh            CI size: 4 workers, 2,000 workflows, kills for 60 s per database
#   scripts/torture.sh large      on demand: 8 workers, 100,000 workflows, kills for 25 min per database
#   scripts/torture.sh ci sqlite  one database only
# Uses ACIDIC_TEST_PG_URL when set (then PostgreSQL is not restarted mid-run); otherwise starts a
# throwaway PostgreSQL and restarts it once in the middle of the kill phase.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-ci}
dbs=${2:-sqlite postgres}
case "$size" in
  ci) args=(--workers 4 --workflows 2000 --kill-secs 60 --drain-secs 240) ;;
  large) args=(--workers 8 --workflows 100000 --kill-secs 1500 --drain-secs 1800) ;;
  *) echo "usage: $0 [ci|large] [sqlite|postgres]" >&2; exit 2 ;;
esac
cargo build -p acidic-tests --bins
bin=${CARGO_TARGET_DIR:-target}/debug/torture
for db in $dbs; do
  if [ "$db" = postgres ]; then
    restart=()
    if [ -z "${ACIDIC_TEST_PG_URL:-}" ]; then
      dir=/tmp/acidic-pgtorture-$$
      port=$((20000 + ($$ + 1) % 20000))
      trap 'scripts/pg-throwaway.sh stop "$dir"; rm -rf "$dir"' EXIT
      ACIDIC_TEST_PG_URL=$(scripts/pg-throwaway.sh start "$dir" "$port")
      export ACIDIC_TEST_PG_URL
      restart=(--pg-restart "scripts/pg-throwaway.sh restart $dir")
    fi
    "$bin" --db postgres "${args[@]}" "${restart[@]}"
  else
    "$bin" --db sqlite "${args[@]}"
  fi
done
