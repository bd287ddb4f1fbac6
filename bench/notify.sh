#!/usr/bin/env bash
# Benchmark webhook deliveries on this machine: events published (10 per transaction, from 4
# tasks on their own connections) through
# store::notifications::publish to a local receiver that answers 200 at once; 2,000 events to
# one channel and 200 events fanned out to 10 channels, each at the notify kind's default
# concurrency (notify.concurrency, 32) and at the engine's default (8), published while the real App runs (live: deliveries/s from the first
# publish, event → delivered p50/p95) and as a backlog before it starts (deliveries/s from the
# first delivery); then one event fanned out to 10,000 webhook channels of one owner (until
# publish returned, and until the receiver had every request; target ≤ 1 s in all). Runs
# examples/bench_notify.rs in-process against a fresh database it creates and drops. Prints a
# Markdown table for docs/benchmarks.md (progress goes to stderr); with BENCH_FIGURES=file,
# also appends each figure (notify.*) to that file as a TSV line.
# Needs: PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL pointing at a server where we may
# create databases). Arguments go to the program: --quick for a smoke run, --help for sizes.
# BENCH_NOTIFY_BIN=path runs an already built program instead (e.g. a debug build, to smoke-test).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_NOTIFY_BIN:-$CARGO_TARGET_DIR/release/examples/bench_notify}"
[ -n "${BENCH_NOTIFY_BIN:-}" ] || cargo build --release --locked --example bench_notify >&2
db="wh_bench_notify_$$"
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# The program drops its database itself; this covers an interrupted run.
cleanup() {
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

changes=$(git diff --quiet HEAD -- src migrations examples || echo " + uncommitted changes")
echo "$(date +%F), commit $(git rev-parse --short HEAD)$changes, $(nproc) cores"
echo
"$bin" --admin-url "$admin_url" --database "$db" "$@"
