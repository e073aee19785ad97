#!/usr/bin/env bash
# Load benchmark: prepares the data (cached in .dev/bench), builds the release binary
# (or measures BRONZE_BIN, another build, for a before/after table),
# runs bench/load.py and prints a markdown table (also written to .dev/bench/results.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. infra/dev/lib.sh
ensure_venv
ensure_postgres
ensure_aws
ensure_rust
if [ -z "${BRONZE_BIN:-}" ]; then
    say "building the release bronze"
    cargo build --release -q -p bronze-cli
fi
say "running bench/load.py (median of ${BENCH_RUNS:-3} runs per case)"
exec "$VENV/bin/python" bench/load.py "$@"
