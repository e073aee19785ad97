#!/usr/bin/env bash
# Very large objects through the local runner (issue 14): a CSV of CSV_MB megabytes
# (default 5120) and an NDJSON of NDJSON_MB megabytes before gzip (default 1024) are
# generated, uploaded to the S3 endpoint, and loaded by the release `bronze run` in a
# cgroup capped at CAP_MB (default 128, a small Lambda's memory). Prints, per file, its
# size, records, load seconds (the load's own duration_ms), MB/s, records/s and peak RSS.
#
#   CSV_MB=200 NDJSON_MB=50 bash bench/large.sh       # what fits a small disk
#   BRONZE_BIN=/path/to/bronze bash bench/large.sh    # another build
#
# Needs about 3.5 times CSV_MB of free disk (the file, the emulator's copy, the table
# and its WAL in PostgreSQL), root for the cgroup (v1 memory controller; uncapped and
# said so otherwise), and AWS_ENDPOINT_URL or the dev emulator (infra/dev/lib.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. infra/dev/lib.sh
ensure_venv || exit 1
ensure_aws || exit 1
CSV_MB=${CSV_MB:-5120}
NDJSON_MB=${NDJSON_MB:-1024}
CAP_MB=${CAP_MB:-128}
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
bench_db="bronze_large_$$"
psql "$admin_url" -qc "CREATE DATABASE $bench_db" || exit 1
export DATABASE_URL="${admin_url%/*}/$bench_db"
if [ -z "${BRONZE_BIN:-}" ]; then
    cargo build --release -q -p bronze-cli || exit 1
    target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    BRONZE_BIN="$target/release/bronze"
fi
work=$(mktemp -d)
bucket="bronze-large-$$"
cg=/sys/fs/cgroup/memory/bronze_large_$$
trap 'rm -rf "$work"; rmdir "$cg" 2>/dev/null; psql "$admin_url" -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)"' EXIT
capped=no
if mkdir -p "$cg" 2>/dev/null && echo $((CAP_MB << 20)) >"$cg/memory.limit_in_bytes" 2>/dev/null; then
    echo $((CAP_MB << 20)) >"$cg/memory.memsw.limit_in_bytes" 2>/dev/null
    capped=yes
fi

# Orders with a few columns of each kind, written in 8 MB blocks.
"$VENV/bin/python" - "$work" "$CSV_MB" "$NDJSON_MB" <<'PY'
import gzip, os, sys
work, csv_mb, nd_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rows(fmt, header, limit):
    written, i = 0, 0
    if header:
        yield header
        written += len(header)
    while written < limit:
        block = []
        size = 0
        while size < (8 << 20) and written + size < limit:
            line = fmt(i)
            block.append(line)
            size += len(line)
            i += 1
        chunk = b"".join(block)
        written += len(chunk)
        yield chunk
csv = lambda i: b"%d,customer %d,%d.%02d,2026-11-%02dT10:%02d:00Z,%s\n" % (
    i, i % 100_000, i % 10_000, i % 100, i % 28 + 1, i % 60, b"shipped" if i % 3 else b"open")
nd = lambda i: b'{"id":%d,"customer":"customer %d","amount":%d.%02d,"tags":["t%d"],"open":%s}\n' % (
    i, i % 100_000, i % 10_000, i % 100, i % 7, b"true" if i % 3 else b"false")
with open(os.path.join(work, "orders.csv"), "wb") as f:
    for chunk in rows(csv, b"order_id,customer,amount,ordered_at,state\n", csv_mb << 20):
        f.write(chunk)
with gzip.open(os.path.join(work, "events.ndjson.gz"), "wb", compresslevel=6) as f:
    for chunk in rows(nd, b"", nd_mb << 20):
        f.write(chunk)
PY

"$BRONZE_BIN" setup --bucket "$bucket" --queue-prefix "$bucket" --visibility-timeout 3600 >/dev/null || exit 1
printf '| file | MB stored | records | load s | MB/s (text) | records/s | peak RSS MB |\n|---|---|---|---|---|---|---|\n'
for file in orders.csv events.ndjson.gz; do
    case $file in
    orders.csv) key="large/orders/orders.csv" text_mb=$CSV_MB ;;
    *) key="large/events/events.ndjson.gz" text_mb=$NDJSON_MB ;;
    esac
    "$VENV/bin/python" -c 'import boto3,sys; boto3.client("s3").upload_file(sys.argv[1], sys.argv[2], sys.argv[3])' \
        "$work/$file" "$bucket" "$key" || exit 1
    log="$work/$file.log" stats="$work/$file.stats"
    run=("$BRONZE_BIN" run --bucket "$bucket" --queue-prefix "$bucket" --visibility-timeout 3600 --until-idle 5)
    if [ "$capped" = yes ]; then
        echo 0 >"$cg/memory.max_usage_in_bytes" 2>/dev/null
        BRONZE_LOG_FORMAT=json /usr/bin/time -f '%M' -o "$stats" bash -c 'echo $$ > '"$cg"'/cgroup.procs && exec "$@"' _ "${run[@]}" 2>"$log"
    else
        BRONZE_LOG_FORMAT=json /usr/bin/time -f '%M' -o "$stats" "${run[@]}" 2>"$log"
    fi
    status=$?
    peak=$(($(tail -1 "$stats" | tr -dc 0-9) / 1024))
    stored=$(($(stat -c %s "$work/$file") >> 20))
    "$VENV/bin/python" - "$log" "$file" "$stored" "$text_mb" "$peak" "$status" <<'PY'
import json, sys
log, name, stored, text_mb, peak, status = sys.argv[1:]
loaded = None
for line in open(log):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if event.get("fields", {}).get("message") == "Object loaded.":
        loaded = event["fields"]
if loaded is None:
    tail = open(log).read()[-400:].replace("\n", " ")
    print(f"| {name} | {stored} | not loaded (exit {status}) | | | | {peak} | {tail}")
else:
    secs = int(loaded["duration_ms"]) / 1000
    records = int(loaded["records"])
    print(f"| {name} | {stored} | {records:,} | {secs:.1f} | {int(text_mb) / secs:.1f} | {records / secs:,.0f} | {peak} |")
PY
done
echo
echo "cgroup cap: $capped (${CAP_MB} MB); binary: $BRONZE_BIN"
