#!/usr/bin/env bash
# Benchmark the job engine on this machine: bulk enqueue (jobs/s), single enqueue through
# POST /v1/jobs (requests/s, p50/p99), draining 20,000 no-op jobs at concurrency 8 (jobs/s),
# pickup latency into an idle worker (p50/p95/p99), lateness of scheduled jobs, and pickup
# into an idle worker while another kind drains no-op jobs enqueued at 5,000/s (busy pickup),
# each with its target. Runs examples/bench_jobs.rs in-process against a fresh database it
# creates and drops. Prints a Markdown table for docs/benchmarks.md (progress goes to
# stderr); with BENCH_FIGURES=file, also appends each figure (jobs.*) to that file as a TSV
# line.
# Needs: PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL pointing at a server where we may
# create databases). Arguments go to the program: --quick for a smoke run, --help for sizes.
# BENCH_JOBS_BIN=path runs an already built program instead (e.g. a debug build, to smoke-test).
# BENCH_NO_STREAM=1 takes the live event stream's triggers off the scratch database first, to
# measure what they cost (the stream's sequencer runs in both cases, as in the daemon);
# BENCH_NO_SEQUENCER=1 runs no sequencer (the triggers' own cost). Bulk and drain also report
# the CPU this process and the database's backends spent per 1,000 jobs (from /proc).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_JOBS_BIN:-$CARGO_TARGET_DIR/release/examples/bench_jobs}"
[ -n "${BENCH_JOBS_BIN:-}" ] || cargo build --release --locked --example bench_jobs >&2
# A load generator that does not share the daemon's two runtime threads.
if ! command -v wrk >/dev/null; then
    (source deploy/packages.sh && apt_install wrk) >&2 ||
        echo "wrk not installable here; POST /v1/jobs is loaded from the program itself" >&2
fi
db="wh_bench_jobs_$$"
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
