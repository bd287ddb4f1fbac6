#!/usr/bin/env bash
# Benchmark the web dashboard on this machine: starts the release daemon (workers on) against a
# scratch database, seeds 100,000 finished jobs of one user and 20,000 of others straight into
# `jobs`, and measures the overview's page weight (everything a fresh Chromium fetches for
# /ui, as the user and as the admin), the time to first render of the jobs page (server time
# through curl, median of 20; navigation timing and first contentful paint in Chromium through
# chromedriver, median of 10; as the user, as the admin and filtered by kind and state), and the
# live stream's fan-out: the daemon's CPU while echo jobs run at 1,000 jobs/s for 20 s with no
# browser and with 20 holding /ui/events open (a session each), what each received, and the
# daemon's RSS. Runs examples/bench_dashboard.rs; prints a Markdown table for
# docs/benchmarks.md (progress goes to stderr); drops the database and stops the daemon when
# done or interrupted.
# Needs: PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL), psql, curl, /usr/bin/chromium and
# /usr/bin/chromedriver (deploy/test.sh installs them). Arguments go to the program: --quick
# for a smoke run, --help for sizes.
# BENCH_DASHBOARD_DAEMON=path and BENCH_DASHBOARD_BIN=path run already built programs instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
daemon="${BENCH_DASHBOARD_DAEMON:-$CARGO_TARGET_DIR/release/workhorse}"
bin="${BENCH_DASHBOARD_BIN:-$CARGO_TARGET_DIR/release/examples/bench_dashboard}"
[ -n "${BENCH_DASHBOARD_DAEMON:-}" ] || cargo build --release --locked --bin workhorse >&2
[ -n "${BENCH_DASHBOARD_BIN:-}" ] || cargo build --release --locked --example bench_dashboard >&2
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="wh_bench_dashboard_$$"
url="${admin_url%/*}/$db"
port="${BENCH_DASHBOARD_PORT:-18191}"
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
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
BENCH_DASHBOARD_TOKEN=$("$daemon" admin create-token 2>/dev/null | tail -1)
export BENCH_DASHBOARD_TOKEN

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
