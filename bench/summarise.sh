#!/usr/bin/env bash
# Benchmark summaries on this machine: the built-in summariser on a 50 KB text (summaries/s,
# one thread); the provider layer's overhead per model call (2,000 raw POSTs to a local fake
# chat-completions server that answers at once, against 2,000 Providers::complete calls, p50/p99
# and the difference); and the daemon's overhead per summary end to end (200 summaries of 200
# documents through the real App in-process, created_at → finished_at minus the provider's own
# time, p50/p95). Runs examples/bench_summarise.rs against a fresh database it creates and
# drops. Prints a Markdown table for docs/benchmarks.md (progress goes to stderr).
# Needs: PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL pointing at a server where we may
# create databases). Arguments go to the program: --quick for a smoke run, --help for sizes.
# BENCH_SUMMARISE_BIN=path runs an already built program instead (e.g. a debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_SUMMARISE_BIN:-$CARGO_TARGET_DIR/release/examples/bench_summarise}"
[ -n "${BENCH_SUMMARISE_BIN:-}" ] || cargo build --release --locked --example bench_summarise >&2
db="wh_bench_summarise_$$"
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
