#!/usr/bin/env python3
"""Storage benchmark for bronze: prints a markdown table, writes .dev/bench/storage.md.

Run through bench/storage.sh (venv, PostgreSQL, the release bronze). Python stdlib only.

One orders-like CSV (12 columns, key order_id), generated deterministically, is loaded
by `bronze ingest` into a dataset with jsonb storage, which is then switched to
structured storage (one bronze table: the disk holds one copy); the same queries run, in
the same session settings (jit = off), against:
  - the jsonb view with the casts as they were before migration 0010 (PL/pgSQL with a
    regex per value, no index: "today" in issue 20), rebuilt here in a schema of its own;
  - the jsonb view as it is now (0010's inlined SQL casts, 0013's ISO dates and
    timestamps, the key's expression index, statistics on each column's expression);
  - the structured table (built by the switch, as a load keeps it);
  - a native table made with CREATE TABLE AS from the same rows, with a primary key.

Environment knobs (all optional):
  BENCH_ORDERS=3001000   rows of the generated file
  BENCH_RUNS=3           timed runs per query and relation (median), after one warm-up
  BENCH_OLD_RUNS=1       timed runs on the view with the old casts (tens of seconds each),
                         without a warm-up
  BENCH_STORAGE_DB=bronze_bench_storage   the database made (and dropped first)
"""

import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.parse

from binary import bronze_binary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, ".dev", "bench")
BIN = bronze_binary()
ROWS = int(os.environ.get("BENCH_ORDERS", "3001000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
OLD_RUNS = int(os.environ.get("BENCH_OLD_RUNS", "1"))
DB = os.environ.get("BENCH_STORAGE_DB", "bronze_bench_storage")
TENANT = "bench"
LOOKUP = 123456


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=3600):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}… failed ({p.returncode}): {p.stderr.strip()[-800:]}")
    return p.stdout


def psql(url, *sql, timeout=3600):
    args = ["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1"]
    for s in sql:
        args += ["-c", s]
    return run(args, timeout=timeout).strip()


def db_url(base, name):
    u = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


# ---------------------------------------------------------------- data

COUNTRIES = [("US", "USD"), ("DE", "EUR"), ("FR", "EUR"), ("GB", "GBP"), ("JP", "JPY"),
             ("BR", "BRL"), ("IN", "INR"), ("CA", "CAD"), ("AU", "AUD"), ("ES", "EUR"),
             ("IT", "EUR"), ("NL", "EUR"), ("SE", "SEK"), ("MX", "MXN"), ("PL", "PLN"),
             ("CH", "CHF"), ("KR", "KRW"), ("ZA", "ZAR"), ("NO", "NOK"), ("DK", "DKK")]
CITIES = [f"City {c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] + \
         [f"Town {c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWX"]
STATUSES = ["placed", "paid", "shipped", "delivered", "returned"]


def orders_file():
    """orders-<ROWS>.csv: the same bytes every time (a seeded generator)."""
    name = os.path.join(DATA, f"orders-{ROWS}.csv")
    if os.path.exists(name):
        return name
    log(f"generating {name}")
    os.makedirs(DATA, exist_ok=True)
    rng = random.Random(20)
    base = 737425  # 2020-01-01 as a proleptic ordinal
    import datetime

    tmp = name + ".tmp"
    with open(tmp, "w", newline="") as f:
        f.write("order_id,customer_id,country,city,sku,qty,unit_price,discount,currency,"
                "status,order_date,shipped_at\n")
        lines = []
        for i in range(1, ROWS + 1):
            country, currency = COUNTRIES[rng.randrange(len(COUNTRIES))]
            day = datetime.date.fromordinal(base + rng.randrange(1461))
            shipped = f"{day + datetime.timedelta(days=rng.randrange(1, 8))} " \
                      f"{rng.randrange(24):02}:{rng.randrange(60):02}:{rng.randrange(60):02}"
            lines.append(
                f"{i},{rng.randrange(1, 200001)},{country},{CITIES[rng.randrange(len(CITIES))]},"
                f"SKU-{rng.randrange(100000):05},{rng.randrange(1, 21)},"
                f"{rng.randrange(100, 50001) / 100:.2f},{rng.choice(('0', '0.05', '0.10'))},"
                f"{currency},{STATUSES[rng.randrange(5)]},{day},{shipped}\n")
            if len(lines) == 10000:
                f.write("".join(lines))
                lines.clear()
        f.write("".join(lines))
    os.replace(tmp, name)
    return name


# ---------------------------------------------------------------- relations


def old_casts(url):
    """The try_* casts of migration 0005 (PL/pgSQL, a regex per value), in bench_old."""
    with open(os.path.join(REPO, "infra", "migrations", "0005_schemas_contracts_quality.sql")) as f:
        text = f.read()
    start = text.index("CREATE FUNCTION bronze.try_boolean")
    sql = text[start:].replace("bronze.", "bench_old.")
    psql(url, "DROP SCHEMA IF EXISTS bench_old CASCADE; CREATE SCHEMA bench_old")
    p = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1"], input=sql, text=True,
                       capture_output=True)
    if p.returncode != 0:
        raise SystemExit(f"old casts: {p.stderr}")


def set_storage(url, env, storage):
    """`bronze datasets set` with `storage`; returns its seconds (a switch builds)."""
    psql(url, "CHECKPOINT")
    t0 = time.perf_counter()
    run([BIN, "datasets", "set", TENANT, "orders", "--key", "order_id", "--storage", storage],
        env=env)
    return time.perf_counter() - t0


def prepare(url, env, file):
    """One bronze table (jsonb storage), the view with the old casts over it, and the
    native table from the same rows; returns the load's seconds."""
    set_storage(url, env, "jsonb")
    log("bronze ingest (jsonb storage)")
    t0 = time.perf_counter()
    out = run([BIN, "ingest", file, "--tenant", TENANT, "--dataset", "orders"], env=env)
    seconds = time.perf_counter() - t0
    counts = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    if counts.get("inserted") != ROWS:
        raise SystemExit(f"expected {ROWS} inserted, got {counts}")
    old_casts(url)
    view = psql(url, "SELECT pg_get_viewdef('tenant_bench.orders_typed'::regclass)")
    psql(url, "CREATE VIEW bench_old.orders_typed AS "
         + view.rstrip(";").replace("bronze.try_", "bench_old.try_"))
    columns = psql(url, "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) "
                        "FROM information_schema.columns WHERE table_schema = 'tenant_bench' "
                        "AND table_name = 'orders_typed' AND column_name NOT LIKE '\\_bronze\\_%'")
    log("CREATE TABLE AS: the native table")
    psql(url, "DROP SCHEMA IF EXISTS bench_native CASCADE; CREATE SCHEMA bench_native",
         f"CREATE TABLE bench_native.orders AS SELECT {columns} FROM tenant_bench.orders_typed",
         "ALTER TABLE bench_native.orders ADD PRIMARY KEY (order_id)")
    log("VACUUM ANALYZE")
    psql(url, "VACUUM ANALYZE tenant_bench.orders", "VACUUM ANALYZE bench_native.orders")
    return seconds


# ---------------------------------------------------------------- queries

QUERIES = [
    ("`select sum(unit_price), count(*)`", "SELECT sum(unit_price), count(*) FROM {r}"),
    ("`select country, sum(qty) … group by 1`",
     "SELECT country, sum(qty) FROM {r} GROUP BY 1"),
    (f"`select … where order_id = {LOOKUP}` (the key)",
     f"SELECT * FROM {{r}} WHERE order_id = {LOOKUP}"),
    ("`select max(shipped_at)` (a timestamp)", "SELECT max(shipped_at) FROM {r}"),
]
JSONB = [("view, casts now", "tenant_bench.orders_typed"),
         ("view, 0005 casts", "bench_old.orders_typed")]
STRUCTURED = ("structured", "tenant_bench.orders_typed")
NATIVE = ("native (CTAS)", "bench_native.orders")


def timed(url, sql, runs, warm_up):
    """Median milliseconds of `runs` runs after `warm_up` untimed ones, in one session."""
    script = ["SET jit = off", "\\timing on"] + [sql] * (warm_up + runs)
    out = psql(url, *script)
    times = [float(m) for m in re.findall(r"Time: ([0-9.]+) ms", out)]
    if len(times) != warm_up + runs:
        raise SystemExit(f"could not read the timings of {sql!r}: {out[-400:]}")
    return statistics.median(times[warm_up:])


def size_mb(url, relation):
    return int(psql(url, f"SELECT pg_total_relation_size('{relation}'::regclass)")) / 1e6


def fmt_ms(ms):
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.2f} ms"


def measure(url, relations):
    """{(query label, relation name): median ms}."""
    out = {}
    for label, template in QUERIES:
        for name, relation in relations:
            # The 0005 view takes tens of seconds a query: no warm-up (the bronze table
            # was read just before it).
            old = relation.startswith("bench_old")
            log(f"{label} on {name}")
            out[label, name] = timed(url, template.format(r=relation),
                                     OLD_RUNS if old else RUNS, 0 if old else 1)
    return out


def main():
    started = time.perf_counter()
    base = os.environ.get("DATABASE_URL") or sys.exit("DATABASE_URL is not set")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"{BIN} missing: run bench/storage.sh (it builds it)")
    file = orders_file()
    psql(base, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", f"CREATE DATABASE {DB}")
    url = db_url(base, DB)
    env = dict(os.environ, DATABASE_URL=url)
    run([BIN, "migrate"], env=env)
    load_s = prepare(url, env, file)
    # "Today" had no statistics on the view's expressions (they came with the view's
    # new casts): without them, the 0005 view is measured as it was; then they are
    # made again (`datasets set`) and analysed for the view as it is now.
    psql(url, "DO $$DECLARE s record; BEGIN FOR s IN SELECT stxname FROM pg_statistic_ext "
              "WHERE stxrelid = 'tenant_bench.orders'::regclass LOOP "
              "EXECUTE format('DROP STATISTICS tenant_bench.%I', s.stxname); END LOOP; END$$",
         "ANALYZE tenant_bench.orders", "SELECT count(*) FROM tenant_bench.orders")
    ms = measure(url, JSONB[1:])
    set_storage(url, env, "jsonb")
    psql(url, "ANALYZE tenant_bench.orders")
    ms.update(measure(url, JSONB[:1] + [NATIVE]))
    view_mb = size_mb(url, "tenant_bench.orders")
    native_mb = size_mb(url, "bench_native.orders")
    log("switching the dataset to structured storage")
    switch_s = set_storage(url, env, "structured")
    psql(url, "VACUUM ANALYZE tenant_bench.orders_typed")
    ms.update(measure(url, [STRUCTURED]))
    kept_mb = size_mb(url, "tenant_bench.orders_typed")
    names = ["view, 0005 casts", "view, casts now", STRUCTURED[0], NATIVE[0]]
    lines = ["| query | " + " | ".join(names)
             + " | 0005 view ÷ view now | structured ÷ native | view now ÷ native |",
             "|---|" + "---:|" * (len(names) + 3)]
    for label, _ in QUERIES:
        old, view, kept, native = (ms[label, n] for n in names)
        lines.append(f"| {label} | " + " | ".join(fmt_ms(ms[label, n]) for n in names)
                     + f" | {old / view:.1f}× | {kept / native:.2f}× | {view / native:.1f}× |")
    lines.append(f"| size on disk, indexes included | {view_mb:,.0f} MB (bronze table) | "
                 f"{view_mb:,.0f} MB (same) | {kept_mb:,.0f} MB (beside the bronze table) | "
                 f"{native_mb:,.0f} MB | – | {kept_mb / native_mb:.2f}× | "
                 f"{view_mb / native_mb:.1f}× |")
    pg = psql(url, "SHOW server_version")
    out = ["# bronze storage benchmark", "",
           f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {ROWS:,} rows (12 columns, key order_id), "
           f"PostgreSQL {pg}, jit off; median of {RUNS} runs after a warm-up "
           f"({OLD_RUNS} on the 0005 view, no warm-up, and without the statistics on the view's expressions that came with the new casts), one "
           "session per query and relation.", "",
           *lines, "",
           f"`bronze ingest` of the file into the empty dataset (jsonb): {load_s:.1f} s; "
           f"`bronze datasets set … --storage structured` on it (the table built from the "
           f"current rows, with its indexes): {switch_s:.1f} s.", "",
           f"Total bench time: {time.perf_counter() - started:.0f} s."]
    text = "\n".join(out) + "\n"
    with open(os.path.join(DATA, "storage.md"), "w") as f:
        f.write(text)
    print(text)
    psql(base, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
