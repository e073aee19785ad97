#!/usr/bin/env bash
# Create (if missing) the project's Python venv at $REPO/.venv and install the pinned
# developer tools from infra/dev/requirements.txt: moto_server, cargo-lambda (+zig),
# sam, cfn-lint. `venv.sh localstack` does the same for LocalStack, in a venv of its
# own ($REPO/.venv-localstack, from infra/dev/requirements-localstack.txt: its pins
# clash with aws-sam-cli's).
#
# Idempotent and cheap when nothing changed: the pip step runs only when the hash of
# requirements.txt (plus the interpreter version) differs from .venv/.bronze-stamp;
# a venv whose interpreter is gone is rebuilt, and one that lost a tool is repaired.
# Concurrent runs for the same venv wait for each other (flock, when available).
# Works unattended (CI=true, no stdin).
#
# Environment:
#   PYTHON              interpreter used to create the venv (default: python3)
#   BRONZE_VENV         venv location (default: $REPO/.venv)
#   BRONZE_LOCALSTACK_VENV  the LocalStack venv's location (default: $REPO/.venv-localstack)
#   BRONZE_VENV_FORCE=1 run pip even if the stamp matches
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
case "${1:-tools}" in
tools)
    VENV="${BRONZE_VENV:-$REPO/.venv}"
    REQS="$SCRIPT_DIR/requirements.txt"
    TOOLS=(moto_server cargo-lambda sam cfn-lint)
    ;;
localstack)
    VENV="${BRONZE_LOCALSTACK_VENV:-$REPO/.venv-localstack}"
    REQS="$SCRIPT_DIR/requirements-localstack.txt"
    TOOLS=(localstack)
    ;;
*)
    printf 'usage: venv.sh [tools|localstack]\n' >&2
    exit 2
    ;;
esac
STAMP="$VENV/.bronze-stamp"
PYTHON="${PYTHON:-python3}"

log() { printf 'venv.sh: %s\n' "$*" >&2; }

if command -v flock >/dev/null 2>&1; then
    lock="${TMPDIR:-/tmp}/bronze-venv-$(printf '%s' "$VENV" | sha256sum | cut -c1-16).lock"
    exec 9>"$lock"
    flock 9
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "error: '$PYTHON' not found; install Python >= 3.9 (e.g. apt-get install python3 python3-venv)"
    exit 1
fi

# A venv whose interpreter no longer runs (base Python moved or upgraded) is rebuilt.
if [[ -e "$VENV" ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "existing venv at $VENV is broken; recreating it"
    rm -rf "$VENV"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv at $VENV with $("$PYTHON" --version 2>&1)"
    if ! "$PYTHON" -m venv "$VENV"; then
        log "error: '$PYTHON -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
        rm -rf "$VENV"
        exit 1
    fi
fi

py_version="$("$VENV/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
want="$( { cat "$REQS"; echo "python=$py_version"; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"

missing_tools() {
    local tool
    for tool in "${TOOLS[@]}"; do
        [[ -x "$VENV/bin/$tool" ]] || printf '%s ' "$tool"
    done
}

if [[ "${BRONZE_VENV_FORCE:-0}" != 1 && "$want" == "$have" && -z "$(missing_tools)" ]]; then
    log "up to date (stamp $STAMP matches $REQS); skipping pip"
else
    rm -f "$STAMP"
    export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
    pip_flags=(--no-input)
    if [[ "${CI:-}" == true || ! -t 1 ]]; then
        pip_flags+=(--progress-bar off)
    fi
    log "installing pinned tools from $REQS (about a minute the first time)"
    start=$SECONDS
    "$VENV/bin/python" -m pip install "${pip_flags[@]}" -r "$REQS" </dev/null >&2
    if [[ -n "$(missing_tools)" ]]; then
        # pip calls a package satisfied even when its scripts were deleted.
        log "missing: $(missing_tools); reinstalling the pinned packages"
        "$VENV/bin/python" -m pip install "${pip_flags[@]}" --force-reinstall --no-deps -r "$REQS" </dev/null >&2
    fi
    "$VENV/bin/python" -m pip check >&2 || log "warning: 'pip check' reports conflicts (see above)"
    if [[ -n "$(missing_tools)" ]]; then
        log "error: not installed: $(missing_tools)"
        exit 1
    fi
    printf '%s\n' "$want" >"$STAMP"
    log "installed in $((SECONDS - start)) s"
fi

log "venv:         $VENV (python $py_version)"
for tool in "${TOOLS[@]}"; do
    log "$(printf '%-13s %s' "$tool:" "$VENV/bin/$tool")"
done
log "use:          source $VENV/bin/activate   # or: PATH=\"$VENV/bin:\$PATH\""
