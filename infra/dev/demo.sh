#!/usr/bin/env bash
# The demo: files dropped into a bucket end up as rows in PostgreSQL, printed.
# Starts the emulator BRONZE_EMULATOR names (moto, the default, or localstack) unless
# AWS_ENDPOINT_URL or BRONZE_USE_AWS=1 says otherwise, uses PostgreSQL from
# DATABASE_URL or the local server, builds `bronze`, lets the local runner play Lambda,
# and prints the bronze tables and the ledger.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_rust
ensure_venv
ensure_postgres
ensure_aws

# A database of its own, so the demo starts clean each time it runs.
admin_url="$DATABASE_URL"
if psql "$admin_url" -qc 'DROP DATABASE IF EXISTS bronze_demo' -c 'CREATE DATABASE bronze_demo' >/dev/null 2>&1; then
    export DATABASE_URL="${admin_url%/*}/bronze_demo"
fi
say "database: $DATABASE_URL"

say "building bronze"
cargo build -q -p bronze-cli
bronze="$TARGET/debug/bronze"

bucket="bronze-demo-$(date +%s)"
say "provisioning s3://$bucket, its notification and the queues at ${AWS_ENDPOINT_URL:-AWS}"
"$bronze" setup --bucket "$bucket" --queue-prefix "$bucket"

say "dropping files into the bucket (one key with a space and a '+')"
data="$REPO/tests/data/demo"
put_object "$data/orders.csv" "$bucket" "acme/orders/2026 11/a+b.csv"
put_object "$data/orders-2.csv.gz" "$bucket" "acme/orders/2026/11/orders-2.csv.gz"
put_object "$data/customers.ndjson" "$bucket" "tenant=acme/dataset=customers/part-0001.ndjson"
put_object "$data/orders.csv" "$bucket" "bad-tenant!/orders/x.csv"

say "running the local runner until the queues are idle"
"$bronze" run --bucket "$bucket" --queue-prefix "$bucket" --until-idle 3

q() { psql "$DATABASE_URL" -P pager=off -c "$1"; }
say "tenant_acme.orders"
q "SELECT record_key, version, change_type, payload, source_key, source_line, load_id FROM tenant_acme.orders ORDER BY load_id, source_line"
say "tenant_acme.customers"
q "SELECT left(record_key, 12) AS record_key, payload, source_key, source_line FROM tenant_acme.customers ORDER BY source_line"
say "bronze.objects (the ledger)"
q "SELECT id, key, status, attempts, tenant, dataset, error FROM bronze.objects ORDER BY id"
say "bronze.loads"
q "SELECT id, object_id, status, format, compression, records_in, inserted, unchanged, bytes, duration_ms FROM bronze.loads ORDER BY id"
say "bronze schema history acme orders (the schema registry)"
"$bronze" schema history acme orders
say "bronze schema show acme orders"
"$bronze" schema show acme orders
say "bronze quality acme orders"
"$bronze" quality acme orders
say "bronze status (what needs a human: backlog, last loads, queues, dead letters)"
"$bronze" status --queue-prefix "$bucket"
say "tenant_acme.orders_typed (the typed view: current rows, typed columns)"
q "SELECT order_id, customer_id, ordered_at, amount, currency, note, _bronze_version FROM tenant_acme.orders_typed ORDER BY order_id"

api_port="${BRONZE_DEMO_API_PORT:-8080}"
say "the records API (bronze serve on 127.0.0.1:$api_port): acme's orders over 100, dearest first"
BRONZE_API_TOKENS=acme=demo-token "$bronze" serve --addr "127.0.0.1:$api_port" --bucket "$bucket" >/dev/null &
api_pid=$!
trap 'kill "$api_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do (echo >"/dev/tcp/127.0.0.1/$api_port") 2>/dev/null && break; sleep 0.1; done
echo "curl -H 'Authorization: Bearer demo-token' 'http://127.0.0.1:$api_port/v1/acme/datasets/orders/records?amount=gt.100&order=amount.desc&select=order_id,amount'"
curl -sS -H 'Authorization: Bearer demo-token' \
    "http://127.0.0.1:$api_port/v1/acme/datasets/orders/records?amount=gt.100&order=amount.desc&select=order_id,amount"
echo
