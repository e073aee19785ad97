#!/usr/bin/env bash
# Backfill benchmark: N objects (default 10,000) put into a bucket without any
# notification, then `bronze backfill` measured twice: the first run dispatches every
# object (HEAD, ledger row, load task), the second finds them all known. Prints a table
# of objects per second, listing included. Uses moto (or AWS_ENDPOINT_URL) and
# DATABASE_URL, like the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. infra/dev/lib.sh
ensure_venv
ensure_postgres
ensure_aws
ensure_rust
N=${BENCH_OBJECTS:-10000}
cargo build --release -q -p bronze-cli
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bronze="$target/release/bronze"
prefix="bench-backfill-$$"
db="bronze_backfill_$$"
admin="$DATABASE_URL"
psql "$admin" -qc "CREATE DATABASE $db"
trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
export DATABASE_URL="${admin%/*}/$db"
# The objects land before the bucket has any notification, as in a bucket that held
# files before bronze was set up.
"$VENV/bin/python" - "$prefix" "$N" <<'PY'
import sys, boto3
from concurrent.futures import ThreadPoolExecutor
bucket, n = sys.argv[1], int(sys.argv[2])
s3 = boto3.client("s3")
s3.create_bucket(Bucket=bucket)
def put(i):
    s3.put_object(Bucket=bucket, Key=f"acme/orders/{i:06d}.csv", Body=f"id,v\n{i},x\n".encode())
with ThreadPoolExecutor(16) as pool:
    list(pool.map(put, range(n)))
PY
RUST_LOG=warn "$bronze" setup --bucket "$prefix" --queue-prefix "$prefix" >/dev/null
run() {
    local start end
    start=$(date +%s.%N)
    out=$(RUST_LOG=warn "$bronze" backfill "s3://$prefix" --queue-prefix "$prefix" "$@")
    end=$(date +%s.%N)
    python3 -c "import json,sys; c=json.loads(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print(f'| {sys.argv[4]} | {c[\"listed\"]:,} | {c[\"known\"]:,} | {c[\"queued\"]:,} | {s:.1f} | {c[\"listed\"]/s:,.0f} |')" "$out" "$start" "$end" "$*"
}
echo "| run | listed | known | queued | seconds | objects/s |"
echo "|---|---:|---:|---:|---:|---:|"
run --dry-run
run
run
