# Shared set-up for the dev scripts: sourced, never run. Each function is idempotent,
# so the demo and the test suite can call them on a fresh machine or a warm one.
#
# Honours: DATABASE_URL (default: the local server), AWS_ENDPOINT_URL (default: a moto
# server this script starts), BRONZE_USE_AWS=1 (real AWS: no endpoint, no moto).

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEV="$REPO/.dev"
VENV="${BRONZE_VENV:-$REPO/.venv}"
MOTO_PORT="${MOTO_PORT:-5000}"
mkdir -p "$DEV"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_venv() {
    bash "$REPO/infra/dev/venv.sh" 2>"$DEV/venv.log" || { cat "$DEV/venv.log" >&2; return 1; }
    export PATH="$VENV/bin:$PATH"
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

# S3 and SQS: AWS_ENDPOINT_URL if set, real AWS with BRONZE_USE_AWS=1, else moto.
ensure_aws() {
    export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
    export AWS_REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
    if [ "${BRONZE_USE_AWS:-0}" = 1 ] || [ -n "${AWS_ENDPOINT_URL:-}" ]; then
        return 0
    fi
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
    export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
    if moto_up "$AWS_ENDPOINT_URL"; then
        return 0
    fi
    say "starting moto on $AWS_ENDPOINT_URL (log: .dev/moto.log)"
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$DEV/moto.log" 2>&1 &
    echo $! >"$DEV/moto.pid"
    for _ in $(seq 1 60); do
        moto_up "$AWS_ENDPOINT_URL" && return 0
        sleep 0.5
    done
    cat "$DEV/moto.log" >&2
    return 1
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
