#!/usr/bin/env python3
"""Whole-file schema inference: `bronze infer` against DuckDB's type detection over
every row (`read_csv(..., sample_size=-1)`, one thread), on the same files in the same
run. Prints a markdown table: seconds (median of 3), MB/s, records/s, peak RSS.

Usage: bench/infer.sh (prepares the data and builds bronze first)."""

import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, ".dev", "bench")
BRONZE = os.path.join(REPO, "target", "release", "bronze")
RUNS = 3

DUCKDB = """
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET threads = 1")
start = time.perf_counter()
rows = con.execute("DESCRIBE SELECT * FROM read_csv(?, sample_size = -1)", [sys.argv[1]]).fetchall()
seconds = time.perf_counter() - start
print(seconds, len(rows))
"""


def run(argv):
    """Runs argv; returns (wall seconds, peak RSS MB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{argv[0]} failed: {err.decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024, out


def records(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def main():
    files = [os.path.join(DATA, "flights.csv"), os.path.join(DATA, "flights-x10.csv")]
    rows = []
    for path in files:
        size_mb = os.path.getsize(path) / 1e6
        n = records(path)
        results = {}
        for tool in ("bronze infer", "duckdb"):
            walls, rss = [], []
            for _ in range(RUNS):
                if tool == "duckdb":
                    wall, peak, out = run([sys.executable, "-c", DUCKDB, path])
                    wall = float(out.split()[0])  # the query alone, not Python's start-up
                else:
                    wall, peak, out = run([BRONZE, "infer", path])
                    report = json.loads(out)
                    assert report["records"] == n, (report["records"], n)
                walls.append(wall)
                rss.append(peak)
            results[tool] = (statistics.median(walls), max(rss))
        base = results["duckdb"][0]
        for tool, (wall, peak) in results.items():
            rows.append(
                f"| {tool} | {os.path.basename(path)} | {size_mb:.0f} | {wall:.2f} | "
                f"{size_mb / wall:.1f} | {n / wall:,.0f} | {peak:.0f} | {base / wall:.2f} |"
            )
    table = [
        "| tool | file | MB | seconds (median of 3) | MB/s | records/s | peak RSS MB | speed × DuckDB |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    text = "\n".join(table)
    print(text)
    with open(os.path.join(DATA, "infer-results.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
