#!/usr/bin/env bash
# The whole test suite: formatting, clippy with warnings denied, unit and end-to-end
# tests (moto + PostgreSQL), the Lambda binaries under cargo-lambda, and the SAM
# template under `sam validate` and cfn-lint. Prints a timing table at the end.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

setup_start=$SECONDS
ensure_rust || exit 1
ensure_venv || exit 1
ensure_postgres || exit 1
ensure_aws || exit 1
# Databases left by tests that failed in an earlier run.
psql "$DATABASE_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'bronze\_test\_%'" 2>/dev/null |
    while read -r stale; do psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $stale WITH (FORCE)"; done
setup_secs=$((SECONDS - setup_start))

names=() results=() secs=()
step() {
    local name="$1"
    shift
    say "$name: $*"
    local start=$SECONDS
    if "$@"; then results+=(ok); else results+=(FAILED); fi
    names+=("$name")
    secs+=($((SECONDS - start)))
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step tests cargo test --workspace
step lambda bash tests/lambda/invoke.sh
step template bash infra/dev/check-template.sh

passed=0 failed=0
printf '\n%-10s %-7s %s\n' step result seconds
printf '%-10s %-7s %s\n' setup ok "$setup_secs"
for i in "${!names[@]}"; do
    printf '%-10s %-7s %s\n' "${names[$i]}" "${results[$i]}" "${secs[$i]}"
    if [ "${results[$i]}" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
