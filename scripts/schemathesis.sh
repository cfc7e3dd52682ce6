#!/usr/bin/env bash
# Property-based tests of the admin API against its own OpenAPI document: starts the built
# binary on a free port with its own database and queue prefix, creates a token, runs
# schemathesis (no 5xx, every response as documented), stops the service and drops the
# database.
#
#   ./scripts/schemathesis.sh                 uses target/debug/shopbridge (builds it if missing)
#   SCHEMATHESIS_MAX_EXAMPLES=100 ./scripts/schemathesis.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

if ! command -v schemathesis >/dev/null 2>&1; then
    say "Installing schemathesis from PyPI."
    python3 -m pip install --quiet schemathesis
fi
[[ -x target/debug/shopbridge ]] || cargo build --locked --bin shopbridge

PG="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
readonly PG
readonly RUN_ID="$$"
readonly DB_NAME="shopbridge_schemathesis_${RUN_ID}"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
readonly PORT
export DATABASE_URL="$PG/$DB_NAME"
export AMQP_URL="${TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export SHOPBRIDGE_QUEUE_PREFIX="schemathesis-${RUN_ID}."
export SHOPBRIDGE_QUEUE_EXPIRES=10m
export SHOPBRIDGE_LISTEN="127.0.0.1:$PORT"
# Any free port: /metrics is not under test here, and 9090 may be taken.
export SHOPBRIDGE_METRICS_LISTEN="127.0.0.1:0"
export SHOPBRIDGE_PUBLIC_URL="http://127.0.0.1:$PORT"
SHOPBRIDGE_MASTER_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
export SHOPBRIDGE_MASTER_KEY
export SHOPBRIDGE_LOG_FORMAT=json RUST_LOG="${RUST_LOG:-shopbridge=warn}"
readonly BIN=target/debug/shopbridge LOG="target/schemathesis-service.log"

service_pid=""
cleanup() {
    if [[ -n $service_pid ]]; then
        kill "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    psql "$PG/postgres" -q -c "drop database if exists \"$DB_NAME\" with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$BIN" migrate >/dev/null
TOKEN=$("$BIN" tokens create --name schemathesis --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
"$BIN" run >"$LOG" 2>&1 &
service_pid=$!
for _ in $(seq 1 60); do
    if "$BIN" healthcheck --url "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
    kill -0 "$service_pid" 2>/dev/null || { cat "$LOG" >&2; say "the service exited"; exit 1; }
    sleep 1
done
say "Service on port $PORT (log: $LOG)."

schemathesis run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --no-color
