#!/usr/bin/env bash
# Benchmark the job engine as the jobs table grows, on this machine: drain rate and
# GET /v1/jobs p99 (an admin's and a user's default page) with 0, 1 and 10 million finished
# jobs in the table; pickup into an idle worker with 1 million jobs waiting in another kind;
# this process's RSS while the engine serves a kind with 1 million pending jobs; pruning
# throughput (finished jobs deleted per second) while a drain runs; the jobs table's and its
# indexes' size after a day of 1 million jobs with the default retention. Runs
# examples/bench_scale.rs in-process against a fresh database it creates and drops; the
# finished jobs are inserted with INSERT … SELECT generate_series (the 10 million take a few
# minutes). Prints a Markdown table for docs/benchmarks.md (progress goes to stderr); with
# BENCH_FIGURES=file, also appends each figure (scale.*) to that file as a TSV line.
# Needs: PostgreSQL at 127.0.0.1:5432 as a superuser (or DATABASE_URL pointing at a server
# where we may create databases; the fill turns triggers off for its session), and about
# 10 GB of disk for the 10 million rows. Arguments go to the program: --quick for a smoke run,
# --help for sizes (e.g. --finished 0,1000000).
# BENCH_SCALE_BIN=path runs an already built program instead (e.g. a debug build, to smoke-test).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_SCALE_BIN:-$CARGO_TARGET_DIR/release/examples/bench_scale}"
[ -n "${BENCH_SCALE_BIN:-}" ] || cargo build --release --locked --example bench_scale >&2
db="wh_bench_scale_$$"
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
