#!/usr/bin/env bash
# Benchmark page rendering on this machine: 50 distinct local pages (~4 KB each) loaded by two
# concurrent loaders through the egress proxy, (1) on a warm pool of two sessions, cleared after
# each page, and (2) on a new session per page (pages/s, p50/p95 per page each), plus the RSS
# (and PSS) of the benchmark with its chromedriver and Chromium while the pool is warm. Runs
# examples/bench_scrape.rs in-process with the real Browser. Prints a Markdown table for
# docs/benchmarks.md (progress goes to stderr).
# Needs: chromedriver in PATH and Chromium at /usr/bin/chromium (apt-get install
# chromium-driver). Arguments go to the program: --quick for a smoke run, --help for sizes.
# BENCH_SCRAPE_BIN=path runs an already built program instead (e.g. a debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_SCRAPE_BIN:-$CARGO_TARGET_DIR/release/examples/bench_scrape}"
[ -n "${BENCH_SCRAPE_BIN:-}" ] || cargo build --release --locked --example bench_scrape >&2

changes=$(git diff --quiet HEAD -- src examples || echo " + uncommitted changes")
echo "$(date +%F), commit $(git rev-parse --short HEAD)$changes, $(nproc) cores, $(chromium --version 2>/dev/null | head -1)"
echo
"$bin" "$@"
