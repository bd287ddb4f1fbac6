#!/usr/bin/env bash
# Every figure in one run: builds the daemon and the benchmark programs once (release), measures
# the SQL floor with pgbench (bench/floor.sh), runs bench/jobs.sh, quotas.sh, notify.sh,
# inject.sh and scale.sh (if present) against it, and prints one table of each figure, its
# target and its ratio to the floor where one applies (bench/report.py).
#
# Usage: bench/all.sh [--build-time] [--no-scale] [--quick] [--debug]
#        BENCH_OUT=dir bench/all.sh --table-only
#   --build-time  first time a clean release build of the daemon into an empty target dir
#                 (build.clean_release_s; takes most of the 12 minutes it is allowed)
#   --no-scale    skip bench/scale.sh (the slowest)
#   --quick       smoke run: --quick to every program, 3 s per floor measure; figures mean nothing
#   --debug       use a debug build (smoke-testing this script; figures mean nothing)
#   --table-only  print the report of an earlier run in $BENCH_OUT again, measure nothing
# Each script's Markdown goes to $BENCH_OUT/<name>.md (its progress to <name>.log), the figures
# to $BENCH_OUT/figures.tsv and the report to $BENCH_OUT/report.md. BENCH_OUT defaults to a new
# directory under /tmp. Needs what the scripts need: PostgreSQL at 127.0.0.1:5432 (or
# DATABASE_URL), psql, pgbench, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

build_time=0 scale=1 quick=0 profile=release table_only=0
for arg in "$@"; do
    case "$arg" in
        --build-time) build_time=1 ;;
        --no-scale) scale=0 ;;
        --quick) quick=1 ;;
        --debug) profile=debug ;;
        --table-only) table_only=1 ;;
        *) sed -n '2,19s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done

if [ "$table_only" = 1 ]; then
    [ -n "${BENCH_OUT:-}" ] && [ -f "$BENCH_OUT/figures.tsv" ] ||
        { echo "--table-only needs BENCH_OUT=dir of an earlier run (with figures.tsv)" >&2; exit 2; }
    cat "$BENCH_OUT/header.txt" 2>/dev/null || true
    echo
    python3 bench/report.py "$BENCH_OUT/figures.tsv"
    exit 0
fi

BENCH_OUT="${BENCH_OUT:-$(mktemp -d /tmp/workhorse-bench.XXXXXX)}"
mkdir -p "$BENCH_OUT"
export BENCH_FIGURES="$BENCH_OUT/figures.tsv"
: >"$BENCH_FIGURES"
echo "output in $BENCH_OUT" >&2

changes=""
[ -z "$(git status --porcelain -- src migrations examples bench Cargo.toml Cargo.lock)" ] ||
    changes=" + uncommitted changes"
header="$(date -u '+%F %H:%M UTC'), commit $(git rev-parse --short HEAD)$changes, $(nproc) cores, $profile build"
echo "$header" >"$BENCH_OUT/header.txt"

if [ "$build_time" = 1 ]; then
    scratch_target=$(mktemp -d /tmp/workhorse-build.XXXXXX)
    echo "clean release build into $scratch_target" >&2
    started=$(date +%s)
    CARGO_TARGET_DIR="$scratch_target" cargo build --release --locked --bin workhorse >&2
    build_s=$(( $(date +%s) - started ))
    rm -rf "$scratch_target"
    printf 'build.clean_release_s\t%s\ts\tclean release build of the workhorse binary, empty target dir, %s cores\n' \
        "$build_s" "$(nproc)" >>"$BENCH_FIGURES"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
if [ "$profile" = release ]; then
    cargo build --release --locked --bin workhorse --examples >&2
else
    cargo build --locked --bin workhorse --examples >&2
fi
out="$CARGO_TARGET_DIR/$profile"
export BENCH_FLOOR_BIN="$out/workhorse" BENCH_INJECT_BIN="$out/workhorse"
export BENCH_JOBS_BIN="$out/examples/bench_jobs" BENCH_QUOTAS_BIN="$out/examples/bench_quotas"
export BENCH_NOTIFY_BIN="$out/examples/bench_notify" BENCH_SCALE_BIN="$out/examples/bench_scale"

args=()
if [ "$quick" = 1 ]; then
    args=(--quick)
    export FLOOR_SECONDS="${FLOOR_SECONDS:-3}" FLOOR_BULK_RUNS="${FLOOR_BULK_RUNS:-2}"
fi

# run NAME ARGS...: bench/NAME.sh, its table to NAME.md and its progress to NAME.log (and here).
failed=()
run() {
    local name=$1
    shift
    echo "== $name" >&2
    if ! bash "bench/$name.sh" "$@" >"$BENCH_OUT/$name.md" 2> >(tee "$BENCH_OUT/$name.log" >&2); then
        echo "== $name FAILED (see $BENCH_OUT/$name.log)" >&2
        failed+=("$name")
    fi
}

run floor
run jobs "${args[@]}"
run quotas "${args[@]}"
run notify "${args[@]}"
run inject
if [ "$scale" = 1 ] && [ -f bench/scale.sh ]; then
    run scale "${args[@]}"
fi

python3 bench/report.py "$BENCH_FIGURES" >"$BENCH_OUT/report.md"
echo
echo "$header"
echo
cat "$BENCH_OUT/report.md"
echo
echo "Each benchmark's own table: $BENCH_OUT/<name>.md; figures: $BENCH_FIGURES."
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
