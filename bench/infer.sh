#!/usr/bin/env bash
# Benchmark: `bronze infer` against DuckDB's whole-file type detection, same files,
# same run. Needs the data from bench/load.sh (.dev/bench/flights*.csv).
set -euo pipefail
# shellcheck source=../infra/dev/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../infra/dev/lib.sh"
cd "$REPO"
ensure_venv
if [ ! -f .dev/bench/flights-x10.csv ]; then
    echo "run bench/load.sh first: it prepares .dev/bench/flights*.csv" >&2
    exit 1
fi
"$VENV/bin/python" -c 'import duckdb' 2>/dev/null || "$VENV/bin/pip" install -q 'duckdb==1.5.6'
cargo build -q --release -p bronze-cli
"$VENV/bin/python" bench/infer.py
