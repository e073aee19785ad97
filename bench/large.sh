#!/usr/bin/env bash
# Very large objects through the local runner (issue 14): a CSV of CSV_MB megabytes
# (default 5120) and an NDJSON of NDJSON_MB megabytes before gzip (default 1024; 0
# skips either), each after a baseline of the same shape of BASE_MB megabytes (default
# 19: the 336,776 rows of bench/load.sh's end-to-end case, in the narrow shape), loaded by
# the release `bronze run` in a cgroup capped at CAP_MB (default 128, a small Lambda's
# memory; bench/cgroup.sh). Prints, per file: its size, records, load seconds (the
# load's own duration_ms), MB/s, records/s and that rate against its baseline's, peak
# RSS and the cgroup's peak, the table's size, and whether the load fits Lambda's 900 s.
#
# SHAPE: `narrow` (default: orders of five short fields, 57 bytes a CSV record, 81 an
# NDJSON one) or `wide` (the same and a free-text note, 3 KB a record). The objects are
# made as the load reads them (bench/s3gen.py, in front of the emulator), never stored:
# what the disk must hold is the table, about 10 times the text for the narrow shape
# (560 bytes a CSV record: 52 GB for 5 GB of CSV; 7.5 GB for 1 GB of NDJSON) and 0.6
# times for the wide one (PostgreSQL compresses the long payloads). Each table is
# dropped once measured, in a database of the bench's own, dropped at the end.
#
#   CSV_MB=200 NDJSON_MB=50 bash bench/large.sh          # a quick run
#   SHAPE=wide bash bench/large.sh                       # full size on a 20 GB disk
#   BRONZE_BIN=/path/to/bronze bash bench/large.sh       # another build
#
# The runner's BRONZE_MAX_LOAD_SECONDS is LOAD_SECONDS (default 7200), so a load
# longer than Lambda's 900 s is measured rather than given up.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. infra/dev/lib.sh
. bench/cgroup.sh
ensure_venv || exit 1
ensure_aws || exit 1
CSV_MB=${CSV_MB:-5120}
NDJSON_MB=${NDJSON_MB:-1024}
BASE_MB=${BASE_MB:-19}
SHAPE=${SHAPE:-narrow}
CAP_MB=${CAP_MB:-128}
LOAD_SECONDS=${LOAD_SECONDS:-7200}
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
bench_db="bronze_large_$$"
psql "$admin_url" -qc "CREATE DATABASE $bench_db" || exit 1
export DATABASE_URL="${admin_url%/*}/$bench_db"
if [ -z "${BRONZE_BIN:-}" ]; then
    cargo build --release -q -p bronze-cli || exit 1
    BRONZE_BIN="$TARGET/release/bronze"
fi
work=$(mktemp -d)
bucket="bronze-large-$$"
cgroup_open "bronze_large_$$" "$CAP_MB"

# The S3 endpoint the runner reads: requests pass to the emulator, but the large
# objects are made as they are read (bench/s3gen.py), never stored.
gen_port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/python" bench/s3gen.py "$gen_port" "$AWS_ENDPOINT_URL" &
gen_pid=$!
trap 'kill $gen_pid; rm -rf "$work"; cgroup_close; psql "$admin_url" -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)"' EXIT
gen_url="http://127.0.0.1:$gen_port"
for _ in $(seq 50); do curl -s -o /dev/null "$gen_url/" && break; sleep 0.2; done

# Puts a placeholder at KEY (its notification starts the load) and has the endpoint
# make the object KIND of MB megabytes there; prints its size, records and text bytes.
generate() {
    local kind=$1 mb=$2 key=$3
    "$VENV/bin/python" - "$bucket" "$key" "$kind" "$mb" "$SHAPE" <<'PY' |
import boto3, json, sys
bucket, key, kind, mb, shape = sys.argv[1:]
s3 = boto3.client("s3")
s3.put_object(Bucket=bucket, Key=key, Body=b"placeholder")
head = s3.head_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]
print(json.dumps({"bucket": bucket, "key": key, "kind": kind, "mb": int(mb), "shape": shape,
                  "etag": head["etag"], "last_modified": head["last-modified"]}))
PY
        curl -sf -X POST "$gen_url/_generated" --data-binary @- |
        "$VENV/bin/python" -c 'import json,sys; d = json.load(sys.stdin); print(d["size"], d["records"], d["text"])'
}

"$BRONZE_BIN" setup --bucket "$bucket" --queue-prefix "$bucket" --visibility-timeout $((LOAD_SECONDS * 2)) >/dev/null || exit 1
printf '| file | MB stored | MB text | records | load s | MB/s (text) | records/s | × its baseline | peak RSS MB | cgroup peak MB | table GB | fits 900 s |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
base_rate=""
cases=""
[ "$CSV_MB" != 0 ] && cases="csv:base:$BASE_MB csv:big:$CSV_MB"
[ "$NDJSON_MB" != 0 ] && cases="$cases ndjson:base:$BASE_MB ndjson:big:$NDJSON_MB"
for case in $cases; do
    IFS=: read -r kind size mb <<<"$case"
    name="$kind, $mb MB" dataset="${kind}_$size"
    name="$name $SHAPE"
    [ "$size" = base ] && name="$name (baseline)"
    key="large/$dataset/data.$kind"
    [ "$kind" = ndjson ] && key="$key.gz"
    read -r stored records text < <(generate "$kind" "$mb" "$key")
    [ -n "${text:-}" ] || exit 1
    log="$work/$dataset.log" stats="$work/$dataset.stats" rate="$work/$dataset.rate"
    AWS_ENDPOINT_URL=$gen_url BRONZE_LOG_FORMAT=json BRONZE_MAX_LOAD_SECONDS=$LOAD_SECONDS capped "$stats" "$BRONZE_BIN" run --bucket "$bucket" \
        --queue-prefix "$bucket" --visibility-timeout $((LOAD_SECONDS * 2)) --until-idle 5 2>"$log"
    status=$?
    cg_peak=""
    [ "$CAPPED" = yes ] && cg_peak=$(($(cat "$CGROUP/memory.max_usage_in_bytes" 2>/dev/null || cat "$CGROUP/memory.peak") >> 20))
    table=$(psql "$DATABASE_URL" -Atc "SELECT pg_total_relation_size('tenant_large.$dataset')" 2>/dev/null)
    "$VENV/bin/python" - "$log" "$name" "$stored" "$text" "$(peak_mb "$stats")" "$cg_peak" "${table:-0}" "$status" "$base_rate" "$rate" <<'PY'
import json, sys
log, name, stored, text, peak, cg_peak, table, status, base, rate_file = sys.argv[1:]
loaded = None
for line in open(log):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if event.get("fields", {}).get("message") == "Object loaded.":
        loaded = event["fields"]
mb = lambda n: f"{int(n) / (1 << 20):,.1f}"
if loaded is None:
    tail = open(log).read()[-400:].replace("\n", " ")
    print(f"| {name} | {mb(stored)} | {mb(text)} | not loaded (exit {status}) | | | | | {peak} | {cg_peak} | | | {tail}")
else:
    secs = int(loaded["duration_ms"]) / 1000
    rate = int(loaded["records"]) / secs
    open(rate_file, "w").write(str(rate))
    ratio = f"{rate / float(base):.2f}" if base else "1.00"
    print(f"| {name} | {mb(stored)} | {mb(text)} | {int(loaded['records']):,} | {secs:.1f} | "
          f"{int(text) / (1 << 20) / secs:.1f} | {rate:,.0f} | {ratio} | {peak} | {cg_peak} | "
          f"{int(table) / (1 << 30):.2f} | {'yes' if secs <= 900 else 'no'} |")
PY
    # A baseline's rate is what the next file, its big one, is compared with.
    base_rate=""
    [ "$size" = base ] && [ -s "$rate" ] && base_rate=$(cat "$rate")
    # What the next case needs of the disk: this case's table goes.
    psql "$DATABASE_URL" -qc "DROP TABLE IF EXISTS tenant_large.$dataset CASCADE" 2>/dev/null
    "$VENV/bin/python" -c 'import boto3,sys; boto3.client("s3").delete_object(Bucket=sys.argv[1], Key=sys.argv[2])' "$bucket" "$key"
done
echo
echo "cgroup cap: $CAPPED (${CAP_MB} MB); binary: $BRONZE_BIN; S3: $AWS_ENDPOINT_URL; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
