#!/usr/bin/env bash
# What the live event stream's triggers cost each statement of the job engine: runs
# bench/stream_statements.sql (EXPLAIN ANALYZE medians with the triggers on and off, and the
# sequencer's statement) on a scratch database migrated by the release binary, then drops it.
# Needs: PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL), psql.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_STATEMENTS_BIN:-$CARGO_TARGET_DIR/release/workhorse}"
[ -n "${BENCH_STATEMENTS_BIN:-}" ] || cargo build --release --locked --bin workhorse >&2
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="wh_bench_statements_$$"
url="${admin_url%/*}/$db"
cleanup() {
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
WORKHORSE_CONFIG_DIR=/nonexistent WORKHORSE_DATABASE__URL="$url" WORKHORSE_LOG__LEVEL=warn \
    "$bin" migrate >/dev/null
echo "$(date +%F), commit $(git rev-parse --short HEAD), $(nproc) cores"
psql "$url" -q -f bench/stream_statements.sql
