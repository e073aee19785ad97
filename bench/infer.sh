#!/usr/bin/env bash
# Benchmark: `bronze infer` against DuckDB's whole-file type detection, same files,
# same run, one table. The files are written by bench/shapes.py (deterministic, cached
# in .dev/bench; flights.csv as bench/load.sh fetches it); flights-x10.csv is measured
# too when bench/load.sh has made it. BRONZE_BIN measures another build instead of
# building this checkout's; BRONZE_BASE adds a "before" build (see bench/infer.py).
set -euo pipefail
# shellcheck source=../infra/dev/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../infra/dev/lib.sh"
cd "$REPO"
ensure_venv
"$VENV/bin/python" -c 'import duckdb' 2>/dev/null || "$VENV/bin/pip" install -q 'duckdb==1.5.6'
"$VENV/bin/python" bench/shapes.py
if [ -z "${BRONZE_BIN:-}" ]; then
    cargo build -q --release -p bronze-cli
fi
"$VENV/bin/python" bench/infer.py
