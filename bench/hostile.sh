#!/usr/bin/env bash
# Hostile inputs against the release `bronze` binary, each run in a cgroup capped at
# 128 MB (a Lambda's memory): prints peak RSS, exit status and verdict per case.
#
#   bash bench/hostile.sh                 # this checkout's binary
#   BRONZE_BIN=/path/to/bronze bash bench/hostile.sh   # another build, for a before/after table
#
# Needs root for the cgroup (bench/cgroup.sh); without it the cases run uncapped and
# say so. Cases that ingest need DATABASE_URL.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/cgroup.sh
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
bench_db="bronze_hostile_$$"
psql "$admin_url" -qc "CREATE DATABASE $bench_db" || exit 1
export DATABASE_URL="${admin_url%/*}/$bench_db"
if [ -z "${BRONZE_BIN:-}" ]; then
    cargo build --release -q -p bronze-cli || exit 1
    target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    BRONZE_BIN="$target/release/bronze"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"; cgroup_close; psql "$admin_url" -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)"' EXIT
CAP_MB=${CAP_MB:-128}
cgroup_open "bronze_hostile_$$" "$CAP_MB"

python3 - "$work" <<'PY'
import gzip, sys, os
w = sys.argv[1]
def put(name, data):
    with open(os.path.join(w, name), "wb") as f:
        f.write(data)
# 200,001 lines, a stray quote on line 2.
rows = [b"id,name,amount", b'1,"Bob,10'] + [b"%d,name%d,%d" % (i, i, i % 97) for i in range(2, 200_001)]
put("stray_quote.csv", b"\n".join(rows) + b"\n")
# A 300 KB header of 100,000 empty names.
put("wide_header.csv", b"," * 99_999 + b"\n" + b"1" + b",1" * 99_999 + b"\n")
# 50,000 distinct keys, one per record.
put("many_keys.ndjson", b"".join(b'{"k%d":%d}\n' % (i, i) for i in range(50_000)))
# One 200 MB line, gzip (about 200 KB).
put("bomb_line.ndjson.gz", gzip.compress(b'{"a":"' + b"x" * (200 << 20) + b'"}\n', 9))
# One 100 MB NDJSON line.
put("long_line.ndjson", b'{"a":"' + b"y" * (100 << 20) + b'"}\n{"a":1}\n')
# 100 MB of CSV behind an unclosed quote.
put("open_quote.csv", b'a,b\n1,"' + b"z,z\n" * (25 << 20) + b"2,ok\n")
PY

printf '%-22s %-7s %10s %5s  %s\n' case command "peak MB" exit verdict
run() {
    local case=$1
    shift
    local out="$work/out" err="$work/err" stats="$work/stats"
    capped "$stats" "$@" >"$out" 2>"$err"
    local status=$?
    local peak
    peak=$(peak_mb "$stats")
    local verdict
    verdict=$( (grep -ho '"inserted":[0-9]*\|"rejected":[0-9]*' "$out"; tail -c 300 "$err" | tr '\n' ' ' | grep -o '[^/]*$' | cut -c1-110) | tr '\n' ' ')
    [ "$status" -gt 128 ] && verdict="killed (signal $((status - 128)))"
    printf '%-22s %-7s %10s %5s  %s\n' "$case" "$2" "$peak" "$status" "${verdict:0:130}"
}
for f in stray_quote.csv wide_header.csv many_keys.ndjson bomb_line.ndjson.gz long_line.ndjson open_quote.csv; do
    run "$f" "$BRONZE_BIN" parse "$work/$f"
    run "$f" "$BRONZE_BIN" infer "$work/$f"
    dataset="h$$_$(echo "$f" | tr -c 'a-z' '_' | cut -c1-20)"
    run "$f" "$BRONZE_BIN" ingest "$work/$f" --tenant hostile --dataset "$dataset"
done
echo "cgroup cap: $CAPPED (${CAP_MB} MB); binary: $BRONZE_BIN"
