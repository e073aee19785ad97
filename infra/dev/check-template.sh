#!/usr/bin/env bash
# Check template.yaml offline: `sam validate`, `sam validate --lint` and `cfn-lint`,
# with the pinned tools from the project venv (made or refreshed by venv.sh first), then
# template_test.py: the deploy decisions the linters cannot see (docs/deploy.md), in
# the template and in samconfig.toml.
# Prints one line per check; exits non-zero if any check fails (all checks run).
#
# Usage: infra/dev/check-template.sh [TEMPLATE]   (default: $REPO/template.yaml)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
TEMPLATE="${1:-$REPO/template.yaml}"
VENV="${BRONZE_VENV:-$REPO/.venv}"

"$SCRIPT_DIR/venv.sh" </dev/null

# No network or credentials needed: sam validate only wants a region and some
# credentials to exist; these fakes are never sent anywhere by the checks below.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export SAM_CLI_TELEMETRY=0
export SAM_CLI_CONTEXT_DEBUG=0
export PATH="$VENV/bin:$PATH"

cd "$REPO"
failed=0
log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

# run NAME CMD...: runs CMD, prints "PASS NAME" or "FAIL NAME" and, on failure, the
# output. A check that passes but prints a warning counts as a failure: the template
# must be clean.
run() {
    local name="$1"; shift
    local out="$log_dir/out"
    if "$@" >"$out" 2>&1 </dev/null && ! grep -Eiq '(^|[^a-z])(W[0-9]{4}|warning)' "$out"; then
        printf 'PASS  %s\n' "$name"
    else
        printf 'FAIL  %s\n' "$name"
        sed 's/^/      /' "$out"
        failed=1
    fi
}

run "sam validate"        sam validate --template "$TEMPLATE"
run "sam validate --lint" sam validate --lint --template "$TEMPLATE"
run "cfn-lint"            cfn-lint --format parseable -- "$TEMPLATE"
run "template tests"      env BRONZE_TEMPLATE="$TEMPLATE" "$VENV/bin/python" "$SCRIPT_DIR/template_test.py"

if [[ $failed -ne 0 ]]; then
    echo "check-template: FAILED ($TEMPLATE)"
    exit 1
fi
echo "check-template: all checks passed ($TEMPLATE)"
