#!/usr/bin/env bash
# Benchmark the live event stream on this machine: starts the release daemon (workers on)
# against a scratch database, opens 1,000 SSE clients on GET /v1/events from one process (by
# default 1,000 users each following their own events, the jobs theirs at random; `--tenants 0`
# makes every client the admin on `?all=true`, so each event reaches all of them), inserts echo
# jobs straight into `jobs` at 2,000 jobs/s for 20 s (three events each: queued, running,
# succeeded) and measures the latency from each event's `at` to its receipt (50 timed
# clients), events delivered per second, the daemon's RSS (no clients, idle clients, under
# load) and CPU, and the engine's drain rate without and with the clients connected.
# Runs examples/bench_events.rs; prints a Markdown table for docs/benchmarks.md (progress goes
# to stderr); drops the database and stops the daemon when done or interrupted.
# Needs: PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL), psql, curl. Arguments go to the
# program: --quick for a smoke run, --help for sizes.
# BENCH_EVENTS_DAEMON=path and BENCH_EVENTS_BIN=path run already built programs instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
daemon="${BENCH_EVENTS_DAEMON:-$CARGO_TARGET_DIR/release/workhorse}"
bin="${BENCH_EVENTS_BIN:-$CARGO_TARGET_DIR/release/examples/bench_events}"
[ -n "${BENCH_EVENTS_DAEMON:-}" ] || cargo build --release --locked --bin workhorse >&2
[ -n "${BENCH_EVENTS_BIN:-}" ] || cargo build --release --locked --example bench_events >&2
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="wh_bench_events_$$"
url="${admin_url%/*}/$db"
port="${BENCH_EVENTS_PORT:-18190}"
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# A socket per client on both ends.
ulimit -n "$(ulimit -Hn)"
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null

export WORKHORSE_CONFIG_DIR="$tmp/none" WORKHORSE_DATA_DIR="$tmp/data" \
    WORKHORSE_HTTP__LISTEN="127.0.0.1:$port" WORKHORSE_LOG__LEVEL=warn \
    WORKHORSE_DATABASE__URL="$url"
"$daemon" serve >>"$tmp/log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/log" >&2; exit 1; }
    sleep 0.05
done
BENCH_EVENTS_TOKEN=$("$daemon" admin create-token 2>/dev/null | tail -1)
export BENCH_EVENTS_TOKEN

changes=$(git diff --quiet HEAD -- src migrations examples || echo " + uncommitted changes")
echo "$(date +%F), commit $(git rev-parse --short HEAD)$changes, $(nproc) cores"
echo
status=0
"$bin" --url "http://127.0.0.1:$port" --database-url "$url" --daemon-pid "$pid" \
    --clk-tck "$(getconf CLK_TCK)" "$@" || status=$?
if grep -qiE 'error|panic' "$tmp/log"; then
    echo "daemon log (errors):" >&2
    grep -iE 'error|panic' "$tmp/log" | tail -20 >&2
fi
exit "$status"
