#!/usr/bin/env bash
# Records API benchmark: builds the release bronze, loads BENCH_ROWS (3.4M) generated
# rows, serves them with `bronze serve`, and prints a table: NDJSON stream rows/s
# against psql's \copy of the same payloads, p50/p99 of filtered pages against the
# PostgREST-style SQL run directly (pgbench), and the server's peak RSS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. infra/dev/lib.sh
ensure_postgres
ensure_rust
if [ -z "${BRONZE_BIN:-}" ]; then
    say "building the release bronze"
    cargo build --release -q -p bronze-cli
    export BRONZE_BIN="$TARGET/release/bronze"
fi
exec python3 bench/api.py "$@"
