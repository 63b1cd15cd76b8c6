#!/usr/bin/env bash
# Runs the whole test suite (unit, integration on SQLite and PostgreSQL, trybuild UI cases, doc
# tests). Uses ACIDIC_TEST_PG_URL when set; otherwise starts a throwaway PostgreSQL from the
# machine's binaries and stops it afterwards. Fails (never skips) when PostgreSQL is unavailable.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ACIDIC_TEST_PG_URL:-}" ]; then
  dir=${ACIDIC_PG_DIR:-/tmp/acidic-pgtest-$$}
  port=${ACIDIC_PG_PORT:-$((20000 + $$ % 20000))}
  trap 'scripts/pg-throwaway.sh stop "$dir"; rm -rf "$dir"' EXIT
  ACIDIC_TEST_PG_URL=$(scripts/pg-throwaway.sh start "$dir" "$port")
  export ACIDIC_TEST_PG_URL
  echo "test.sh: started a throwaway PostgreSQL at $ACIDIC_TEST_PG_URL"
fi
cargo test "$@"
