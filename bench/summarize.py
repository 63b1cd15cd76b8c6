#!/usr/bin/env python3
"""The benchmark table: bench/summarize.py RESULTS_DIR (written by bench/run.sh).

Every figure is min/median/max over the repetitions. "x limit" divides the median rate by the
database's commit rate measured in the same run at the same number of connections: pgbench
`SELECT ... FOR UPDATE; UPDATE` (one step needs at least one such commit; a workflow needs three)
and single-row UPDATE for enqueues; SQLite `BEGIN IMMEDIATE; SELECT; UPDATE; COMMIT` on one
connection. "x best peer" divides by the best peer's median for the same phase and concurrency (the peers
run on PostgreSQL only, so acidic-sqlite rows are compared with PostgreSQL peers).
"""
import csv, json, os, re, statistics, sys
from collections import defaultdict

d = sys.argv[1]
med = statistics.median


def mmm(xs):
    xs = sorted(xs)
    return f"{xs[0]:,.0f} / {med(xs):,.0f} / {xs[-1]:,.0f}"


print("## Machine and settings\n")
print("```")
print(open(os.path.join(d, "machine.txt")).read().strip())
print("```\n")

pg = defaultdict(list)
for r in csv.DictReader(open(os.path.join(d, "pgbench.csv"))):
    pg[(r["script"], int(r["clients"]))].append(float(r["tps"]))
sq = defaultdict(list)
for line in open(os.path.join(d, "sqlite.jsonl")):
    r = json.loads(line)
    sq[(r["script"], r["connections"])].append(r["tps"])
print("## The limit (commits per second)\n")
print("| database | transaction | connections | tx/s min / median / max |")
print("|---|---|---|---|")
for (script, c), v in sorted(pg.items()):
    name = "UPDATE" if script == "update" else "SELECT FOR UPDATE + UPDATE"
    print(f"| PostgreSQL | {name} | {c} | {mmm(v)} |")
ins_path = os.path.join(d, "insert-limit.csv")
ins = [float(r["tps"]) for r in csv.DictReader(open(ins_path))] if os.path.exists(ins_path) else []
if ins:
    print(f"| PostgreSQL | acidic's enqueue INSERT (migrated schema, pgbench) | 1 | {mmm(ins)} |")
for (script, c), v in sorted(sq.items()):
    name = "UPDATE" if script == "update" else "SELECT + UPDATE"
    print(f"| SQLite (NORMAL) | {name} | {c} | {mmm(v)} |")
print()


def pg_limit(script, c):
    if script == "insert":
        return med(ins) if ins else None
    xs = pg.get((script, c))
    return med(xs) if xs else None


def sq_limit(script):
    xs = sq.get((script, 1))
    return med(xs) if xs else None


rows = defaultdict(list)
big = []
for line in open(os.path.join(d, "results.jsonl")):
    r = json.loads(line)
    if r.get("label") == "repbig":
        big.append(r)
        continue
    rows[(r["phase"], r["concurrency"], r["peer"], r["variant"])].append(r)

best = {}
for (phase, c, peer, variant), rs in rows.items():
    if peer.startswith("acidic"):
        continue
    m = med([r["rate"] for r in rs])
    best[(phase, c)] = max(best.get((phase, c), 0), m)


def limit_for(phase, c, peer, variant):
    sqlite = peer == "acidic-sqlite"
    if phase.startswith("enqueue-single"):
        return (sq_limit("update") if sqlite else pg_limit("update", 1)), 1
    if phase in ("drain",):
        return (sq_limit("select-update") if sqlite else pg_limit("select_update", c)), 1
    if phase == "workflow":
        return (sq_limit("select-update") if sqlite else pg_limit("select_update", c)), 3
    return None, 1


def cpu_split(rs):
    cli = [r["client_cpu_us_per_unit"] for r in rs if "client_cpu_us_per_unit" in r]
    if not cli:
        return ""
    if rs[0]["peer"] == "acidic-sqlite":
        return f"{med(cli):,.0f}"
    return f"{med(cli):,.0f} + {med([r['pg_cpu_us_per_unit'] for r in rs]):,.0f}"


order = {"enqueue-single": 0, "enqueue-tx": 1, "enqueue-bulk": 2, "drain": 3, "workflow": 4, "latency": 5}
print("## acidic and the peers, same run, same database\n")
print("| phase | c | library (variant) | rate/s min / median / max | x limit | x best peer | commits/unit | WAL fsyncs/unit | CPU µs/unit client + PostgreSQL | dup | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(rows, key=lambda k: (order.get(k[0], 9), k[1], k[0], not k[2].startswith("acidic"), k[2], k[3])):
    phase, c, peer, variant = key
    rs = rows[key]
    rate = med([r["rate"] for r in rs])
    lim, per = limit_for(phase, c, peer, variant)
    xl = f"{rate * per / lim:.2f}" if lim else ""
    # enqueue-tx has no peer of the same name (sqlxmq's "enqueue-bulk" is the same shape: n
    # enqueues in one transaction; the table shows it under its own name).
    b = None if phase == "enqueue-tx" else best.get((phase, c))
    xb = f"{rate / b:.2f}" if b and peer.startswith("acidic") else ""
    sqlite = peer == "acidic-sqlite"
    cpu = "n/a" if sqlite else f"{med([r['commits_per_unit'] for r in rs]):.2f}"
    wal = "n/a" if sqlite else f"{med([r['wal_syncs_per_unit'] for r in rs]):.2f}"
    rss = med([r.get("peak_rss_kb", 0) for r in rs]) / 1024
    # CPU per unit: the benchmark process (for SQLite that is everything) and the whole
    # PostgreSQL server; absent from results of older harness versions.
    split = cpu_split(rs)
    label = peer if variant == "default" else f"{peer} ({variant})"
    print(f"| {phase} | {c} | {label} | {mmm([r['rate'] for r in rs])} | {xl} | {xb} | {cpu} | {wal} | {split} | "
          f"{sum(r['duplicates'] for r in rs)} | {rss:.0f} |")
print()

lat = defaultdict(list)
for (phase, c, peer, variant), rs in rows.items():
    if phase != "latency":
        continue
    for r in rs:
        m = dict(re.findall(r"(p50_ms|p99_ms|max_ms)=([0-9.]+)", r["note"]))
        lat[peer].append(m)
if lat:
    print("## Enqueue-to-start latency at a steady 200 jobs/s (ms, median over repetitions)\n")
    print("| library | p50 | p99 | max |")
    print("|---|---|---|---|")
    for peer, ms in sorted(lat.items()):
        f = lambda k: med([float(m[k]) for m in ms if k in m])
        print(f"| {peer} | {f('p50_ms'):.2f} | {f('p99_ms'):.2f} | {f('max_ms'):.2f} |")
    print()

if big:
    print("## Claim cost and memory against the backlog size (drain, c=16, writes nothing)\n")
    print("| library | backlog | rate/s | CPU µs/job client + PostgreSQL | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for peer in ("acidic", "acidic-sqlite"):
        small = rows.get(("drain", 16, peer, "noop"), [])
        if small:
            print(f"| {peer} | {small[0]['units']:,} | {med([r['rate'] for r in small]):,.0f} | "
                  f"{cpu_split(small)} | {med([r.get('peak_rss_kb', 0) for r in small]) / 1024:.0f} |")
        for r in big:
            if r["peer"] == peer:
                print(f"| {peer} | {r['units']:,} | {r['rate']:,.0f} | {cpu_split([r])} | {r.get('peak_rss_kb', 0) / 1024:.0f} |")
