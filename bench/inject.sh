#!/usr/bin/env bash
# Benchmark the transactions injector on this machine: one run of 100,000 rows (rows/s) and a
# default run (100 rows), timed by the job itself (injector_runs.duration_ms: reading and
# parsing the CSV, picking the rows, the bulk insert and the run's record and event) and from
# trigger to finished job. Runs the release daemon against a scratch database it creates and
# drops. Needs PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL), curl and psql.
# BENCH_INJECT_BIN=path runs an already built daemon instead (e.g. a debug build). With
# BENCH_FIGURES=file, the rows/s of the 100,000-row run is appended to it (bench/all.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_INJECT_BIN:-$CARGO_TARGET_DIR/release/workhorse}"
[ -n "${BENCH_INJECT_BIN:-}" ] || cargo build --release --locked --bin workhorse >&2
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="wh_bench_inject_$$"
base="${admin_url%/*}"
work=$(mktemp -d)
cleanup() {
    [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
export WORKHORSE_DATABASE__URL="$base/$db" WORKHORSE_HTTP__LISTEN=127.0.0.1:18089 \
    WORKHORSE_DATA_DIR="$work" WORKHORSE_LOG__LEVEL=warn
"$bin" serve >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18089/readyz >/dev/null && break; sleep 0.1; done
token=$("$bin" admin create-token 2>/dev/null | tail -1)

# Trigger a run of N rows; print "job_ms rows duration_ms".
run() {
    local rows=$1 started job state
    started=$(date +%s%N)
    job=$(curl -sf -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"args\": {\"rows\": $rows, \"client_id\": \"bench\"}}" \
        http://127.0.0.1:18089/v1/schedules/inject/trigger | sed 's/.*"job_id":"\([^"]*\)".*/\1/')
    for _ in $(seq 600); do
        state=$(psql "$base/$db" -Atc "SELECT state FROM jobs WHERE id = '$job'")
        [[ "$state" == succeeded || "$state" == dead ]] && break
        sleep 0.05
    done
    local ended=$(( ($(date +%s%N) - started) / 1000000 ))
    echo "$ended $(psql "$base/$db" -Atc "SELECT rows_inserted, duration_ms FROM injector_runs WHERE job_id = '$job'" | tr '|' ' ')"
}

run 100 >/dev/null   # warm up: first connection, dataset page cache
read -r big_total big_rows big_ms < <(run 100000)
read -r def_total def_rows def_ms < <(run 100)
big_rate=$(( big_rows * 1000 / (big_ms > 0 ? big_ms : 1) ))
if [ -n "${BENCH_FIGURES:-}" ]; then
    printf 'injector.rows_per_s\t%s\trows/s\tinjector, one run of %s rows, in the job (dataset parsed or cached, pick, COPY, run record)\n' \
        "$big_rate" "$big_rows" >>"$BENCH_FIGURES" || echo "warning: could not write $BENCH_FIGURES" >&2
fi
changes=$(git diff --quiet HEAD -- src migrations || echo " + uncommitted changes")
echo "$(date +%F), commit $(git rev-parse --short HEAD)$changes, $(nproc) cores"
echo
echo "| run | rows | in the job | trigger → finished | rows/s (job) |"
echo "|---|---|---|---|---|"
echo "| one run of 100,000 rows | $big_rows | $big_ms ms | $big_total ms | $big_rate |"
echo "| default run (100 rows) | $def_rows | $def_ms ms | $def_total ms | — |"
