#!/usr/bin/env bash
# Benchmark quota charging on this machine: POST /v1/jobs of echo by 1,000 users on loopback
# from 32 keep-alive clients, 10,000 requests per phase: (1) each request charges one unit of
# the user's scrape quota (all 202), (2) every user's quota is spent (all 429, the refusal
# path), (3) an admin's uncharged enqueues, for comparison; requests/s with p50/p99 each.
# Checks that the counters' reserved units add up to the 202 answers. Runs
# examples/bench_quotas.rs in-process (workers off) against a fresh database it creates and
# drops. Prints a Markdown table for docs/benchmarks.md (progress goes to stderr).
# Needs: PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL pointing at a server where we may
# create databases). Arguments go to the program: --quick for a smoke run, --help for sizes.
# BENCH_QUOTAS_BIN=path runs an already built program instead (e.g. a debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_QUOTAS_BIN:-$CARGO_TARGET_DIR/release/examples/bench_quotas}"
[ -n "${BENCH_QUOTAS_BIN:-}" ] || cargo build --release --locked --example bench_quotas >&2
db="wh_bench_quotas_$$"
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
