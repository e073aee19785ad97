#!/usr/bin/env python3
"""`bronze ingest` of the inference benchmark's files (bench/shapes.py) with two builds
of bronze, in turns (after, before, after, before, …), each run into a new dataset of a
fresh database: whether a change to inference made the whole load faster or slower.
Prints a markdown table: seconds (median), MB/s, peak RSS, and after against before.

Environment: BRONZE_BIN (the build to measure; default this checkout's release build),
BRONZE_BASE (the build to compare with; required), INGEST_RUNS (runs per build and
file, default 3), INGEST_FILES (names in .dev/bench, comma separated), INGEST_DB (the
database made and dropped on DATABASE_URL's server, default bronze_bench_ingest).

Usage: DATABASE_URL=… BRONZE_BASE=… bench/ingest.py (after bench/infer.sh made the files)."""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (process and database helpers)

RUNS = int(os.environ.get("INGEST_RUNS", "3"))
DB = os.environ.get("INGEST_DB", "bronze_bench_ingest")
FILES = {
    "flights.csv": 336_776,
    "orders.csv": 3_000_000,
    "wide.csv": 40_000,
    "text.csv": 60_000,
    "nested.ndjson": 300_000,
}


def fresh_database(base):
    admin = load.db_url(base, "postgres")
    load.psql(admin, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    load.psql(admin, f"CREATE DATABASE {DB}")
    url = load.db_url(base, DB)
    load.run([load.BIN, "migrate"], env=load.bronze_env(url), what="bronze migrate")
    return admin, url


def once(binary, url, name, dataset, expected):
    env = load.bronze_env(url)
    argv = [binary, "ingest", load.path(name), "--tenant", "bench", "--dataset", dataset]
    load.checkpoint(url)
    m = load.measure(argv, env, 1800, f"ingest {name} ({binary})")
    counts = json.loads([line for line in m.stdout.splitlines() if line.startswith("{")][-1])
    load.expect(f"{binary} {name}", counts, records=expected, inserted=expected, rejected=0)
    # The table is not what is measured: dropped, so that the disk holds one at a time.
    load.psql(url, f'DROP TABLE tenant_bench."{dataset}" CASCADE')
    return m.seconds, m.rss_mb, m.cpu


def main():
    base = os.environ.get("BRONZE_BASE") or sys.exit("BRONZE_BASE: the build to compare with")
    load.become_subreaper()
    admin, url = fresh_database(os.environ["DATABASE_URL"])
    builds = [("after", load.BIN), ("before", base)]
    wanted = [f for f in os.environ.get("INGEST_FILES", ",".join(FILES)).split(",") if f]
    rows = []
    try:
        for name in wanted:
            expected = FILES[name]
            size_mb = os.path.getsize(load.path(name)) / 1e6
            walls = {build: [] for build, _ in builds}
            rss = {build: 0.0 for build, _ in builds}
            cpus = {build: [] for build, _ in builds}
            for n in range(RUNS):
                for build, binary in builds:
                    stem = name.split(".")[0].replace("-", "_")
                    wall, peak, cpu = once(binary, url, name, f"{stem}_{build}_r{n}", expected)
                    walls[build].append(wall)
                    cpus[build].append(cpu)
                    rss[build] = max(rss[build], peak)
            before = statistics.median(walls["before"])
            for build, _ in builds:
                wall = statistics.median(walls[build])
                rows.append(
                    f"| {name} | {size_mb:.0f} | {build} | {wall:.2f} | {size_mb / wall:.1f} | "
                    f"{rss[build]:.1f} | {statistics.median(cpus[build]):.2f} | {before / wall:.2f} |"
                )
    finally:
        load.psql(admin, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    table = [
        f"| file | MB | build | seconds (median of {RUNS}) | MB/s | peak RSS MB | client CPU s | speed × before |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
        *rows,
    ]
    print("\n".join(table))


if __name__ == "__main__":
    main()
