#!/usr/bin/env python3
"""Whole-file schema inference: `bronze infer` against DuckDB's type detection over
every row (`read_csv(..., sample_size=-1)` / `read_json(..., sample_size=-1)`, one
thread), on the same files in the same run. Prints one markdown table: wall and CPU
seconds (medians), MB/s of each, peak RSS, speed against DuckDB by each. DuckDB's figures are its query's alone (measured
inside its process), bronze's the whole process's: on a machine others load, the CPU
figures are the steadier ones.

The tools take turns run by run (bronze, DuckDB, bronze, DuckDB, …): on a shared
machine the load drifts by tens of percent within minutes, and in turns it hits both
alike. With BRONZE_BASE (another build of bronze, e.g. main's) it runs a third tool in
the same turns, and checks that both builds print the same report, byte for byte.

Environment: INFER_RUNS (runs per tool and file, default 3), INFER_FILES (names in
.dev/bench, comma separated; default all), BRONZE_BIN (the bronze to measure; default
this checkout's release build), BRONZE_BASE (a "before" build).

Usage: bench/infer.sh (prepares the data and builds bronze first)."""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (its process helpers: peak RSS of the measured process itself)

DATA = load.DATA
RUNS = int(os.environ.get("INFER_RUNS", "3"))
# Records per file, as the generators write them: bronze's report must say as much.
FILES = {
    "flights.csv": 336_776,
    "flights-x10.csv": 3_367_760,
    "orders.csv": 3_000_000,
    "wide.csv": 40_000,
    "text.csv": 60_000,
    "nested.ndjson": 300_000,
}

DUCKDB = """
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET threads = 1")
reader = "read_json" if sys.argv[1].endswith(".ndjson") else "read_csv"
start, cpu = time.perf_counter(), time.process_time()
rows = con.execute(f"DESCRIBE SELECT * FROM {reader}(?, sample_size = -1)", [sys.argv[1]]).fetchall()
print(time.perf_counter() - start, time.process_time() - cpu, len(rows))
"""


def tools():
    """(name, argv before the file) of each tool, bronze's build first."""
    found = [("bronze infer", [load.BIN, "infer"])]
    if os.environ.get("BRONZE_BASE"):
        found.append(("bronze infer (before)", [os.environ["BRONZE_BASE"], "infer"]))
    found.append(("duckdb", [sys.executable, "-c", DUCKDB]))
    return found


def once(name, argv, path):
    """One run: (wall seconds, CPU seconds, peak RSS MB, stdout)."""
    m = load.measure([*argv, path], None, 1800, f"{name} {os.path.basename(path)}")
    if name == "duckdb":
        # The query alone, not Python's start-up.
        wall, cpu, _ = m.stdout.split()
        return float(wall), float(cpu), m.rss_mb, m.stdout
    return m.seconds, m.cpu, m.rss_mb, m.stdout


def bench(name, expected):
    path = os.path.join(DATA, name)
    size_mb = os.path.getsize(path) / 1e6
    walls = {tool: [] for tool, _ in tools()}
    cpus = {tool: [] for tool, _ in tools()}
    rss = {tool: 0.0 for tool, _ in tools()}
    reports = {}
    for _ in range(RUNS):
        for tool, argv in tools():
            wall, cpu, peak, out = once(tool, argv, path)
            walls[tool].append(wall)
            cpus[tool].append(cpu)
            rss[tool] = max(rss[tool], peak)
            if tool != "duckdb":
                reports[tool] = out
    for tool, out in reports.items():
        records = json.loads(out)["records"]
        if records != expected:
            sys.exit(f"{tool} {name}: {records} records, expected {expected}")
    if len(set(reports.values())) > 1:
        sys.exit(f"{name}: the two builds of bronze print different reports")
    base, base_cpu = statistics.median(walls["duckdb"]), statistics.median(cpus["duckdb"])
    rows = []
    for tool, _ in tools():
        wall, cpu = statistics.median(walls[tool]), statistics.median(cpus[tool])
        rows.append(
            f"| {name} | {size_mb:.0f} | {tool} | {wall:.2f} | {size_mb / wall:.1f} | "
            f"{cpu:.2f} | {size_mb / cpu:.1f} | {rss[tool]:.1f} | {base / wall:.2f} | "
            f"{base_cpu / cpu:.2f} |"
        )
    return rows


def main():
    load.become_subreaper()
    wanted = [f for f in os.environ.get("INFER_FILES", ",".join(FILES)).split(",") if f]
    rows = []
    for name in wanted:
        if not os.path.exists(os.path.join(DATA, name)):
            print(f"[infer] {name}: not in {DATA}, skipped", file=sys.stderr)
            continue
        rows += bench(name, FILES[name])
    table = [
        f"| file | MB | tool | wall s (median of {RUNS}) | MB/s | CPU s | MB/CPU s | "
        "peak RSS MB | × DuckDB (wall) | × DuckDB (CPU) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    text = "\n".join(table)
    print(text)
    with open(os.path.join(DATA, "infer-results.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
