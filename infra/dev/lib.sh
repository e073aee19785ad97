# Shared set-up for the dev scripts: sourced, never run. Each function is idempotent,
# so the demo and the test suite can call them on a fresh machine or a warm one.
#
# Honours: DATABASE_URL (default: the local server), AWS_ENDPOINT_URL (default: an
# emulator this script starts), BRONZE_EMULATOR=moto|localstack (which emulator;
# default moto), MOTO_PORT (5000), LOCALSTACK_PORT (4566), BRONZE_USE_AWS=1 (real AWS:
# no endpoint, no emulator).

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEV="$REPO/.dev"
VENV="${BRONZE_VENV:-$REPO/.venv}"
MOTO_PORT="${MOTO_PORT:-5000}"
LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
LOCALSTACK_VENV="${BRONZE_LOCALSTACK_VENV:-$REPO/.venv-localstack}"
BRONZE_EMULATOR="${BRONZE_EMULATOR:-moto}"
# Where cargo puts the binaries (CARGO_TARGET_DIR, relative to the repo, or target/).
TARGET="$(cd "$REPO" && realpath -m "${CARGO_TARGET_DIR:-target}")"
mkdir -p "$DEV"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The tools venv: moto, boto3, cargo-lambda, sam, cfn-lint.
ensure_venv() {
    bash "$REPO/infra/dev/venv.sh" 2>"$DEV/venv.log" || { cat "$DEV/venv.log" >&2; return 1; }
    export PATH="$VENV/bin:$PATH"
}

# LocalStack's venv, apart from the tools (see requirements-localstack.txt).
ensure_localstack_venv() {
    bash "$REPO/infra/dev/venv.sh" localstack 2>"$DEV/venv-localstack.log" ||
        { cat "$DEV/venv-localstack.log" >&2; return 1; }
}

ensure_rust() {
    command -v cargo >/dev/null 2>&1 && return 0
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH" && return 0
    say "cargo not found: install Rust (https://rustup.rs) and run again"
    return 1
}

# PostgreSQL from DATABASE_URL, else the local server, started or installed if needed.
ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        export DATABASE_URL
        return 0
    fi
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    if ! command -v pg_isready >/dev/null 2>&1; then
        say "installing PostgreSQL (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        say "starting PostgreSQL"
        local version
        version="$(ls /etc/postgresql | sort -V | tail -1)"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if ! psql "$DATABASE_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
        # A fresh apt install asks for a password on TCP: give postgres one.
        su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
        export DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
    fi
    psql "$DATABASE_URL" -Atqc 'SELECT 1' >/dev/null
}

moto_up() {
    "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2)
PY
}

# LocalStack's health check answers before its services do: up once S3 and SQS are.
localstack_up() {
    "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import json, sys, urllib.request
health = json.load(urllib.request.urlopen(sys.argv[1] + "/_localstack/health", timeout=2))
assert all(health["services"].get(s) in ("running", "available") for s in ("s3", "sqs"))
PY
}

# moto on MOTO_PORT, started unless it answers already.
start_moto() {
    local url="http://127.0.0.1:$MOTO_PORT"
    moto_up "$url" && return 0
    say "starting moto on $url (log: .dev/moto.log)"
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$DEV/moto.log" 2>&1 &
    echo $! >"$DEV/moto.pid"
    for _ in $(seq 1 60); do
        moto_up "$url" && return 0
        sleep 0.5
    done
    cat "$DEV/moto.log" >&2
    return 1
}

# `python -m localstack.runtime.main`, with S3's object files under .dev/localstack too:
# LocalStack 4.13.1 hard-codes /tmp/localstack-s3-storage, shared by every instance on
# the machine and left behind.
LOCALSTACK_MAIN='import sys
import localstack.services.s3.provider as s3
s3.DEFAULT_S3_TMP_DIR = sys.argv[1]
from localstack.runtime.main import main
main()'

# LocalStack (S3 and SQS only) on LOCALSTACK_PORT, started unless it answers already:
# host mode, no Docker, no internet; its files (objects, temp files, plugin cache) under
# .dev/localstack, its state in memory (a restart starts empty). Queue URLs are path
# style (http://127.0.0.1:4566/queue/<region>/<account>/<name>): the default names a
# host that only LocalStack's own DNS resolves.
start_localstack() {
    local url="http://127.0.0.1:$LOCALSTACK_PORT"
    localstack_up "$url" && return 0
    ensure_localstack_venv || return 1
    say "starting LocalStack on $url (log: .dev/localstack.log)"
    mkdir -p "$DEV/localstack/tmp" "$DEV/localstack/cache"
    (
        cd "$DEV/localstack" || exit 1
        XDG_CACHE_HOME="$DEV/localstack/cache" \
            SERVICES=s3,sqs EAGER_SERVICE_LOADING=1 \
            GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" \
            LOCALSTACK_HOST="127.0.0.1:$LOCALSTACK_PORT" \
            SQS_ENDPOINT_STRATEGY=path \
            SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 DNS_ADDRESS=0 OVERRIDE_IN_DOCKER=0 \
            FILESYSTEM_ROOT="$DEV/localstack" \
            nohup "$LOCALSTACK_VENV/bin/python" -c "$LOCALSTACK_MAIN" "$DEV/localstack/s3" \
            >"$DEV/localstack.log" 2>&1 &
        echo $! >"$DEV/localstack.pid"
    )
    for _ in $(seq 1 120); do
        localstack_up "$url" && return 0
        kill -0 "$(cat "$DEV/localstack.pid")" 2>/dev/null || break
        sleep 0.5
    done
    cat "$DEV/localstack.log" >&2
    return 1
}

# Starts emulator $1 (moto or localstack) unless it runs, and prints its endpoint.
start_emulator() {
    case "$1" in
    moto) start_moto && echo "http://127.0.0.1:$MOTO_PORT" ;;
    localstack) start_localstack && echo "http://127.0.0.1:$LOCALSTACK_PORT" ;;
    *)
        say "BRONZE_EMULATOR=$1: expected moto or localstack"
        return 1
        ;;
    esac
}

# Fake credentials for an emulator (either accepts any).
emulator_credentials() {
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
}

# S3 and SQS: AWS_ENDPOINT_URL if set, real AWS with BRONZE_USE_AWS=1, else the
# emulator BRONZE_EMULATOR names (moto by default), started if it is not running.
ensure_aws() {
    export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
    export AWS_REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
    if [ "${BRONZE_USE_AWS:-0}" = 1 ] || [ -n "${AWS_ENDPOINT_URL:-}" ]; then
        return 0
    fi
    emulator_credentials
    local url
    url="$(start_emulator "$BRONZE_EMULATOR")" || return 1
    export AWS_ENDPOINT_URL="$url"
}

# Uploads FILE to s3://BUCKET/KEY with boto3 (shipped with moto), as a user would.
put_object() {
    "$VENV/bin/python" - "$@" <<'PY'
import sys, boto3
file, bucket, key = sys.argv[1:4]
boto3.client("s3").upload_file(file, bucket, key)
print(f"uploaded {file} -> s3://{bucket}/{key}")
PY
}
