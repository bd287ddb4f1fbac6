#!/usr/bin/env bash
# Benchmark the bare daemon on this machine: time from start to ready (configured PostgreSQL,
# and the embedded cluster warm and cold), idle RSS, and GET /healthz requests/s on loopback
# (wrk, 2 threads, 32 connections, 10 s). Prints a Markdown table for docs/benchmarks.md.
# Needs: a release build (deploy/run.sh builds one), wrk, PostgreSQL at 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${WORKHORSE_BIN:-$CARGO_TARGET_DIR/release/workhorse}"
# Every WORKHORSE_* variable is configuration to the daemon; this one is only ours.
unset WORKHORSE_BIN
[ -x "$bin" ] || cargo build --release --locked --bin workhorse
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
port=18181
tmp=$(mktemp -d)
chmod 755 "$tmp"   # the embedded cluster may run as the postgres user
db="wh_bench_$$"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null

now_ms() { date +%s%3N; }
# start_daemon ENV...: start serve with ENV, wait for /readyz; sets $pid and $ready_ms.
start_daemon() {
    local started
    started=$(now_ms)
    env WORKHORSE_CONFIG_DIR="$tmp/none" WORKHORSE_HTTP__LISTEN="127.0.0.1:$port" \
        WORKHORSE_LOG__LEVEL=warn WORKHORSE_DATA_DIR="$tmp/data" "$@" "$bin" serve \
        >>"$tmp/log" 2>&1 &
    pid=$!
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$tmp/log"; exit 1; }
        sleep 0.005
    done
    ready_ms=$(( $(now_ms) - started ))
}
stop_daemon() { kill -TERM "$pid"; wait "$pid" || true; pid=""; }

url="postgres://postgres@127.0.0.1:5432/$db"
start_daemon env WORKHORSE_DATABASE__URL="$url"   # the first start applies migrations
stop_daemon
start_daemon env WORKHORSE_DATABASE__URL="$url"
ready_configured=$ready_ms
sleep 5
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
wrk_out=$(wrk -t2 -c32 -d10s --latency "http://127.0.0.1:$port/healthz")
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$wrk_out")
p50=$(awk '$1 == "50%" {print $2}' <<<"$wrk_out")
p99=$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")
rss_after_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
stop_daemon
start_daemon env -u WORKHORSE_DATABASE__URL
ready_embedded_cold=$ready_ms
stop_daemon
start_daemon env -u WORKHORSE_DATABASE__URL
ready_embedded_warm=$ready_ms
stop_daemon

cat <<TABLE
| measure | value |
|---|---|
| start → ready, configured PostgreSQL (migrations already applied) | ${ready_configured} ms |
| start → ready, embedded cluster, first start (initdb) | ${ready_embedded_cold} ms |
| start → ready, embedded cluster, existing | ${ready_embedded_warm} ms |
| idle RSS after ready (configured PostgreSQL) | $(( rss_kib / 1024 )) MiB |
| RSS after the load run | $(( rss_after_kib / 1024 )) MiB |
| GET /healthz, wrk -t2 -c32 10 s on loopback | ${rps} req/s (p50 ${p50}, p99 ${p99}) |
TABLE
