#!/usr/bin/env python3
"""Records API benchmark (run through bench/api.sh): stdlib only, plus psql, pgbench
and curl. Prints a markdown table; every ratio is against a baseline measured in the
same run on the same data.

Knobs: BENCH_ROWS (3,400,000), BENCH_REQUESTS (200 per latency case), BENCH_RUNS (3
stream runs, median), BENCH_KEEP=1 keeps the database for another run.
"""

import datetime
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ["BRONZE_BIN"]
ROWS = int(os.environ.get("BENCH_ROWS", "3400000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
ADMIN = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB = "bronze_api_bench"
URL = ADMIN.rsplit("/", 1)[0] + "/" + DB
TOKEN = "bench-token"
PORT = int(os.environ.get("BENCH_PORT", "8818"))
CARRIERS = ["AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV", "9E"]
DESTS = [f"D{n:02}" for n in range(40)]
DAY0 = datetime.date(2025, 1, 1)


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def psql(sql, url=URL):
    return subprocess.run(["psql", url, "-Atqc", sql], check=True, capture_output=True, text=True).stdout.strip()


def data_file():
    """Generated trips: id (the key), a carrier (1 in 16), a rare tail number (1 in
    100,000), airports, a distance, an amount and a day of 2025."""
    path = os.path.join(REPO, ".dev", "bench", f"api-{ROWS}.csv")
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log(f"generating {ROWS:,} rows into {path}")
    with open(path + ".tmp", "w") as f:
        f.write("id,carrier,tailnum,origin,dest,flight,distance,amount,day\n")
        for i in range(1, ROWS + 1):
            day = DAY0 + datetime.timedelta(days=(i * 11) % 365)
            f.write(f"{i},{CARRIERS[(i * 7) % 16]},N{(i * 7919) % 100000:05},"
                    f"{('EWR', 'JFK', 'LGA')[i % 3]},{DESTS[(i * 13) % 40]},{(i * 31) % 5000},"
                    f"{100 + (i * 17) % 4900},{(i * 37) % 100000 / 100:.2f},{day.isoformat()}\n")
    os.rename(path + ".tmp", path)
    return path


def prepare(path):
    if os.environ.get("BENCH_KEEP") and psql(f"SELECT count(*) FROM pg_database WHERE datname = '{DB}'", ADMIN) == "1":
        return
    psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", ADMIN)
    psql(f"CREATE DATABASE {DB}", ADMIN)
    env = dict(os.environ, DATABASE_URL=URL)
    subprocess.run([BIN, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([BIN, "datasets", "set", "bench", "trips", "--key", "id"], env=env, check=True, capture_output=True)
    log(f"loading {ROWS:,} rows (bronze ingest)")
    t0 = time.perf_counter()
    subprocess.run([BIN, "ingest", path, "--tenant", "bench", "--dataset", "trips"], env=env, check=True, capture_output=True)
    log(f"loaded in {time.perf_counter() - t0:.0f} s")
    subprocess.run([BIN, "datasets", "set", "bench", "trips", "--key", "id", "--api-index", "tailnum,day"],
                   env=env, check=True, capture_output=True)
    psql("VACUUM ANALYZE tenant_bench.trips")


def rss_mb(pid):
    """(current, peak) resident set of a process, MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def timed_lines(cmd):
    """Runs a shell pipeline printing NDJSON to stdout; (seconds, lines)."""
    t0 = time.perf_counter()
    out = subprocess.run(["bash", "-c", cmd + " | wc -l"], check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, int(out.strip())


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def api_latencies(path):
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    times = []
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        times.append((time.perf_counter() - t0) * 1000)
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status} {body[:300]!r}")
    conn.close()
    return times, len(json.loads(body)["records"])


def sql_latencies(sql):
    """The same page as PostgREST would ask it of the typed view, run by pgbench over
    one connection: per-transaction latencies from its log."""
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "q.sql")
        with open(script, "w") as f:
            f.write(sql + ";\n")
        subprocess.run(["pgbench", "-n", "-f", script, "-t", str(REQUESTS), "-l", "--log-prefix", os.path.join(tmp, "log"), URL],
                       check=True, capture_output=True, cwd=tmp)
        times = []
        for name in os.listdir(tmp):
            if name.startswith("log"):
                with open(os.path.join(tmp, name)) as f:
                    times += [int(line.split()[2]) / 1000 for line in f]
        return times


def main():
    path = data_file()
    prepare(path)
    # The AWS SDK is only needed for writes, which the bench makes none of: a region and
    # credentials of its own keep it from probing the instance metadata address.
    env = dict(os.environ, DATABASE_URL=URL, BRONZE_API_TOKENS=f"bench={TOKEN}", RUST_LOG="warn",
               AWS_EC2_METADATA_DISABLED="true")
    for key, value in [("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "bench"),
                       ("AWS_SECRET_ACCESS_KEY", "bench")]:
        env.setdefault(key, value)
    server = subprocess.Popen([BIN, "serve", "--addr", f"127.0.0.1:{PORT}"], env=env,
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).connect()
                break
            except OSError:
                time.sleep(0.1)
        base = "/v1/bench/datasets/trips/records"
        api_latencies(base + "?limit=1")
        idle_rss = rss_mb(server.pid)[0]
        rows = []
        # --- stream vs \copy
        copy = f"psql {URL} -c \"\\copy (SELECT payload FROM tenant_bench.trips WHERE is_current AND change_type <> 'delete') TO stdout\""
        stream = f"curl -sS -H 'Authorization: Bearer {TOKEN}' http://127.0.0.1:{PORT}{base}/stream"
        copies, streams = [], []
        for _ in range(RUNS):
            copies.append(timed_lines(copy))
            streams.append(timed_lines(stream))
        for name, runs in (("psql \\copy payload (baseline)", copies), ("GET …/records/stream (NDJSON)", streams)):
            secs = statistics.median(r[0] for r in runs)
            lines = runs[0][1]
            if lines != ROWS:
                raise SystemExit(f"{name}: {lines} lines, expected {ROWS}")
            rows.append((name, f"{lines / secs:,.0f} rows/s", f"{secs:.2f} s",
                         f"{statistics.median(r[0] for r in copies) / secs:.2f}×"))
        stream_rss = rss_mb(server.pid)
        # --- filtered pages
        cases = [
            ("eq on an indexed field (tailnum, 1 in 100,000)", "tailnum=eq.N04242&limit=100",
             "typed.tailnum = 'N04242'"),
            ("eq on a field with no index (carrier, 1 in 16)", "carrier=eq.UA&limit=100",
             "typed.carrier = 'UA'"),
            ("range on a date (one week), by key", "day=gte.2025-03-01&day=lt.2025-03-08&limit=100",
             "typed.day >= '2025-03-01' AND typed.day < '2025-03-08'"),
            ("range on a date (one week), order=day", "day=gte.2025-03-01&day=lt.2025-03-08&order=day.asc&limit=100",
             "typed.day >= '2025-03-01' AND typed.day < '2025-03-08' ORDER BY typed.day"),
        ]
        latency = []
        for name, query, where in cases:
            api, n = api_latencies(f"{base}?{query}")
            # PostgREST's shape: the page from the view, aggregated to one JSON array.
            sql = (f"WITH pgrst_source AS (SELECT typed.* FROM tenant_bench.trips_typed typed WHERE {where} LIMIT 100) "
                   "SELECT coalesce(json_agg(_postgrest_t), '[]') FROM pgrst_source _postgrest_t")
            direct = sql_latencies(sql)
            latency.append((name, n, percentile(api, 50), percentile(api, 99), percentile(direct, 50), percentile(direct, 99)))
        peak = rss_mb(server.pid)[1]
    finally:
        server.terminate()
        server.wait()
        if not os.environ.get("BENCH_KEEP"):
            psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", ADMIN)
    print(f"\n### NDJSON stream, {ROWS:,} current rows (median of {RUNS})\n")
    print("| case | rate | time | vs \\copy |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    print(f"\n### Filtered page of 100, {REQUESTS} requests each, one connection (ms)\n")
    print("| case | rows | API p50 | API p99 | SQL p50 | SQL p99 | API/SQL p50 |")
    print("|---|---|---|---|---|---|---|")
    for name, n, a50, a99, s50, s99 in latency:
        print(f"| {name} | {n} | {a50:.2f} | {a99:.2f} | {s50:.2f} | {s99:.2f} | {a50 / s50:.2f}× |")
    print(f"\n### bronze serve memory (MB)\n")
    print("| idle RSS | RSS after the streams | peak RSS (whole run) |")
    print("|---|---|---|")
    print(f"| {idle_rss:.1f} | {stream_rss[0]:.1f} | {peak:.1f} |")


if __name__ == "__main__":
    main()
