#!/usr/bin/env bash
# The real function binaries as Lambda runtime clients: `cargo lambda watch` runs them
# behind its emulation of the Lambda runtime API, and `cargo lambda invoke` sends them
# the sample events from events/. Checks what they answer and what they wrote.
set -euo pipefail
# shellcheck source=../../infra/dev/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../infra/dev/lib.sh"
cd "$REPO"
ensure_venv
ensure_postgres
ensure_aws

work="$(mktemp -d)"   # outside the workspace, or watch would reload on its own log
port="${LAMBDA_PORT:-9123}"
db="bronze_lambda_$$"
loader="bronze_lambda_loader_$$"   # roles are global to the server: one per run
admin_url="$DATABASE_URL"
cleanup() {
    [ -n "${watch_pid:-}" ] && kill -- -"$watch_pid" 2>/dev/null || true
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    psql "$admin_url" -qc "DROP ROLE IF EXISTS $loader" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
db_url="${admin_url%/*}/$db"

fail() { echo "FAIL: $*" >&2; echo "--- cargo lambda watch log:" >&2; tail -40 "$work/watch.log" >&2; exit 1; }
sql() { psql "$db_url" -Atqc "$1"; }

cargo build -q -p dispatch -p load -p api -p bronze-cli
# As deployed: the owner migrates in a deploy step, the functions connect as a loader
# role that may not migrate (they check the migration and refuse an older database).
psql "$admin_url" -qc "CREATE ROLE $loader LOGIN" >/dev/null
DATABASE_URL="$db_url" "$TARGET/debug/bronze" migrate --loader "$loader" >/dev/null
case "$db_url" in
    *@*) loader_url="$(printf '%s' "$db_url" | sed -E "s#^(postgres(ql)?://)[^@/]*@#\\1$loader@#")" ;;
    *) loader_url="$(printf '%s' "$db_url" | sed -E "s#^(postgres(ql)?://)#\\1$loader@#")" ;;
esac
prefix="bronze-lambda-$$"
load_url="$("$TARGET/debug/bronze" setup --bucket bronze-landing --queue-prefix "$prefix" | awk '$1 == "load" {print $2}')"
# The object events/s3-put-moto.json announces.
put_object tests/data/demo/orders.csv bronze-landing "acme/orders/2026 11/a+b.csv" >/dev/null

env_vars="DATABASE_URL=$loader_url,LOAD_QUEUE_URL=$load_url,AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
env_vars+=",AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY,AWS_REGION=$AWS_REGION"
env_vars+=",AWS_LAMBDA_LOG_FORMAT=JSON,RUST_LOG=info,BRONZE_BUCKET=bronze-landing"
setsid cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" \
    --env-vars "$env_vars" >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 120); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.5
done

invoke() {
    local function="$1" file="$2" expected="$3" got
    got="$(cargo lambda invoke "$function" --invoke-address 127.0.0.1 --invoke-port "$port" \
        --data-file "$file" 2>"$work/invoke.err")" || fail "$function $file: $(cat "$work/invoke.err")"
    [ "$got" = "$expected" ] || fail "$function $file answered $got, expected $expected"
    echo "ok: $function answered $file with $got"
}

none='{"batchItemFailures":[]}'
invoke dispatch events/sqs-s3-test-event.json "$none"
invoke dispatch events/s3-put-moto.json "$none"
[ "$(sql "SELECT status FROM bronze.objects WHERE key = 'acme/orders/2026 11/a+b.csv'")" = pending ] \
    || fail "dispatch did not record the object"

# The load task dispatch queued, delivered to load as Lambda's event source would.
"$VENV/bin/python" - "$load_url" "$work/task.json" <<'PY'
import json, sys, boto3
url, out = sys.argv[1:3]
m = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=2)["Messages"][0]
json.dump({"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
           "attributes": {}, "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
           "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bronze-load", "awsRegion": "us-east-1"}]}, open(out, "w"))
PY
invoke load "$work/task.json" "$none"
[ "$(sql "SELECT count(*) FROM tenant_acme.orders")" = 3 ] || fail "load did not write the 3 rows"
[ "$(sql "SELECT status FROM bronze.objects WHERE id = 1")" = loaded ] || fail "ledger not marked loaded"

# The sample tasks: object 1 is loaded already, object 2 does not exist. Nothing to retry.
invoke load events/sqs-load-task.json "$none"
[ "$(sql "SELECT count(*) FROM bronze.loads")" = 1 ] || fail "a duplicate task wrote a second load"
grep -q '"message":"Object loaded."' "$work/watch.log" || grep -q 'Object loaded' "$work/watch.log" \
    || fail "no log line for the loaded object"
# The records API: the same router as `bronze serve`, with the tenant from the JWT
# authorizer's claim, over the rows load just wrote.
api() {
    local file="$1" check="$2"
    cargo lambda invoke api --invoke-address 127.0.0.1 --invoke-port "$port" \
        --data-file "$file" >"$work/api.json" 2>"$work/invoke.err" || fail "api $file: $(cat "$work/invoke.err")"
    "$VENV/bin/python" -c "$check" "$work/api.json" || fail "api $file answered $(cat "$work/api.json")"
    echo "ok: api answered $file"
}
api events/apigw-v2-records.json '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["statusCode"] == 200, r
ids = [x["data"]["order_id"] for x in json.loads(r["body"])["records"]]
assert ids == ["1003", "1001"], ids'
api events/apigw-v2-other-tenant.json '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["statusCode"] == 403, r
assert r["headers"]["content-type"] == "application/problem+json", r
assert json.loads(r["body"])["status"] == 403, r'
echo "lambda binaries: all invocations answered as expected"
