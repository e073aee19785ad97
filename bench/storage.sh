#!/usr/bin/env bash
# Storage benchmark: reading `<dataset>_typed` with jsonb storage (the view, with the
# casts of before migration 0010 and with today's) and structured storage (the table
# kept by loads), against a native table made with CREATE TABLE AS from the same rows,
# all in one run. Generates a deterministic orders-like CSV (3,001,000 rows by
# default, BENCH_ORDERS), builds the release bronze (or measures BRONZE_BIN), and
# prints a markdown table (also written to .dev/bench/storage.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. infra/dev/lib.sh
ensure_venv
ensure_postgres
ensure_rust
if [ -z "${BRONZE_BIN:-}" ]; then
    say "building the release bronze"
    cargo build --release -q -p bronze-cli
fi
say "running bench/storage.py"
exec "$VENV/bin/python" bench/storage.py "$@"
