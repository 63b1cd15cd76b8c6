#!/usr/bin/env bash
# Postgres commit-rate matrix with pgbench: 2 scripts x clients {1,2,4,8} x
# synchronous_commit {on,off} x REPS repetitions (interleaved), DUR seconds each.
# Env: PGHOST PGPORT PGUSER (connection), PGBIN (dir with psql/pgbench), OUT (csv).
set -eu
cd "$(dirname "$0")"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DUR=${DUR:-10}; REPS=${REPS:-3}; OUT=${OUT:-pgbench-results.csv}
CLIENTS=${CLIENTS:-"1 2 4 8"}; SYNCS=${SYNCS:-"on off"}
DB=${DB:-pgb}
"$PGBIN/psql" -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"$PGBIN/psql" -q -d $DB <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, v bigint NOT NULL DEFAULT 0, pad text);
INSERT INTO acct (id, pad) SELECT g, repeat('x', 80) FROM generate_series(1, 10000) g;
VACUUM ANALYZE acct;
SQL
echo "rep,script,sync,clients,tps,latency_ms,xacts" > "$OUT"
for rep in $(seq 1 "$REPS"); do
  for sync in $SYNCS; do
    for script in update select_update; do
      for c in $CLIENTS; do
        j=$(( c < 2 ? c : 2 ))
        "$PGBIN/psql" -q -d $DB -c "VACUUM acct" -c "CHECKPOINT" >/dev/null
        res=$(PGOPTIONS="-c synchronous_commit=$sync" "$PGBIN/pgbench" -n -M prepared \
              -f $script.sql -c $c -j $j -T "$DUR" $DB 2>&1)
        tps=$(echo "$res" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
        lat=$(echo "$res" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
        nx=$(echo "$res" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
        echo "$rep,$script,$sync,$c,$tps,$lat,$nx" | tee -a "$OUT"
      done
    done
  done
done
