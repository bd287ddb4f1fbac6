#!/usr/bin/env bash
# Benchmark the metrics endpoint on this machine: the cost of the workhorse_jobs gauge's query
# (EXPLAIN ANALYZE, median of 20) and of a whole GET /metrics (curl, median of 20, each after
# the jobs_cache window so every request counts the table again), first with ~1,300 live and
# dead jobs, then with 1,000,000 succeeded jobs added, then with the partial index dropped to
# show what it buys. Workers are off so the inserted jobs stay as they are. Prints a Markdown
# table for docs/benchmarks.md; GET /healthz, timed the same way, is the floor of an HTTP round
# trip on the same machine at the same moment.
# Needs: PostgreSQL at 127.0.0.1:5432 (DATABASE_URL to use another server), psql, curl.
# BENCH_METRICS_BIN=path runs an already built binary (e.g. a debug build: target/debug/workhorse);
# otherwise a release build is made.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${BENCH_METRICS_BIN:-$CARGO_TARGET_DIR/release/workhorse}"
[ -n "${BENCH_METRICS_BIN:-}" ] || cargo build --release --locked --bin workhorse >&2
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
server="${admin_url%/*}"
db="wh_bench_metrics_$$"
url="$server/$db"
port=18182
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null

# The daemon applies the migrations; a 100 ms jobs_cache lets every timed scrape count again.
env WORKHORSE_CONFIG_DIR="$tmp/none" WORKHORSE_DATA_DIR="$tmp/data" \
    WORKHORSE_HTTP__LISTEN="127.0.0.1:$port" WORKHORSE_LOG__LEVEL=warn \
    WORKHORSE_DATABASE__URL="$url" WORKHORSE_JOBS__RUN_WORKERS=false \
    WORKHORSE_METRICS__JOBS_CACHE=100ms "$bin" serve >>"$tmp/log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/log"; exit 1; }
    sleep 0.05
done

q() { psql "$url" -qAtc "$1"; }
gauge_sql="SELECT kind, state, count(*) FROM jobs \
  WHERE state IN ('pending', 'running', 'retrying', 'dead') GROUP BY kind, state"
# median of 20 EXPLAIN ANALYZE execution times, in ms
query_ms() {
    for _ in $(seq 20); do
        q "EXPLAIN (ANALYZE, FORMAT JSON) $gauge_sql" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])'
    done | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}'
}
# median of 20 GET PATH wall times, in ms (each after the cache window)
get_ms() {
    for _ in $(seq 20); do
        sleep 0.15
        curl -sf -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port$1"
    done | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] * 1000}'
}
plan() { q "EXPLAIN $gauge_sql" | grep -oE '(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)[^(]*' | head -1 | sed 's/ *$//'; }
insert() { # insert N jobs of KIND in STATE
    q "INSERT INTO jobs (id, kind, args, state, max_attempts, finished_at) \
       SELECT gen_random_uuid(), '$2', '{}', '$3', 5, \
              CASE WHEN '$3' IN ('succeeded', 'dead', 'cancelled') THEN now() END \
       FROM generate_series(1, $1)"
}
row() {
    q "VACUUM ANALYZE jobs"
    local total; total=$(q "SELECT count(*) FROM jobs" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')
    printf '| %s | %s | %s | %s ms | %s ms | %s ms |\n' "$1" "$total" "$(plan)" \
        "$(query_ms)" "$(get_ms /metrics)" "$(get_ms /healthz)"
}

insert 800 echo pending; insert 200 scrape pending; insert 150 notify retrying
insert 50 summarise running; insert 58 echo dead
changes=$(git diff --quiet HEAD -- src migrations bench || echo " + uncommitted changes")
echo "$(date +%F), commit $(git rev-parse --short HEAD)$changes, $(nproc) cores, $("$bin" --version 2>/dev/null || echo workhorse)"
echo
echo "| jobs table | rows | gauge query plan | gauge query | GET /metrics | GET /healthz (floor) |"
echo "|---|---:|---|---:|---:|---:|"
row "1,258 live and dead jobs"
insert 1000000 echo succeeded
row "+ 1,000,000 succeeded"
q "DROP INDEX jobs_gauge_idx"
row "same, without jobs_gauge_idx"
