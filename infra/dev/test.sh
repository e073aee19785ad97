#!/usr/bin/env bash
# The whole test suite: formatting, clippy with warnings denied, unit and end-to-end
# tests (moto + PostgreSQL), the end-to-end tests once more against LocalStack, the
# Lambda binaries under cargo-lambda, and the SAM template under `sam validate` and
# cfn-lint. Prints a timing table at the end.
#
# BRONZE_EMULATOR=localstack swaps the two emulators (everything on LocalStack, the
# end-to-end tests again on moto); BRONZE_E2E_BOTH=0 skips the second emulator. Given
# AWS_ENDPOINT_URL or BRONZE_USE_AWS=1, everything runs there, once.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

# The emulator the end-to-end tests run against a second time, if any.
second_emulator=""
if [ "${BRONZE_USE_AWS:-0}" != 1 ] && [ -z "${AWS_ENDPOINT_URL:-}" ] && [ "${BRONZE_E2E_BOTH:-1}" = 1 ]; then
    case "$BRONZE_EMULATOR" in
    moto) second_emulator=localstack ;;
    localstack) second_emulator=moto ;;
    esac
fi

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

# Only the test targets that touch S3 and SQS: those in tests/tests/ that make a Bench,
# themselves or through the fault suite's (`orders_bench`: faults_s3.rs, whose S3 faults
# come from a proxy in front of the emulator, and faults_deadline.rs), built by the step
# before. The time of this step is what the second emulator costs, its start included.
# The fault suite's targets in cli/tests/ pass on both emulators too, but their faults
# are the database's and the process's: they run once.
e2e_against() {
    local url target targets=()
    for target in $(grep -l 'Bench::new\|orders_bench' tests/tests/*.rs); do
        targets+=(--test "$(basename "$target" .rs)")
    done
    url="$(start_emulator "$1")" || return 1
    AWS_ENDPOINT_URL="$url" cargo test -p bronze-tests "${targets[@]}"
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step tests cargo test --workspace
if [ -n "$second_emulator" ]; then
    step "e2e-$second_emulator" e2e_against "$second_emulator"
fi
step lambda bash tests/lambda/invoke.sh
step template bash infra/dev/check-template.sh

passed=0 failed=0
printf '\n%-16s %-7s %s\n' step result seconds
printf '%-16s %-7s %s\n' setup ok "$setup_secs"
for i in "${!names[@]}"; do
    printf '%-16s %-7s %s\n' "${names[$i]}" "${results[$i]}" "${secs[$i]}"
    if [ "${results[$i]}" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
