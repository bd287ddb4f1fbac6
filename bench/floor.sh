#!/usr/bin/env bash
# The SQL floor on this machine: what plain SQL through pgbench does on the project's real
# schema (a scratch database with every migration applied, triggers included), for the job
# engine's figures to be compared with. Measured the same way each time, FLOOR_SECONDS (12)
# each, pgbench in prepared mode on loopback:
#   floor.claim_complete             jobs/s: 8 clients, each pair of commits claims 100 pending
#                                    jobs with FOR UPDATE SKIP LOCKED (the engine's claim) and
#                                    completes them with a plain UPDATE ... WHERE id = ANY(ids)
#   floor.claim_complete_no_triggers the same with the jobs table's triggers disabled
#   floor.claim_complete_engine_sql  the same, completing with the engine's complete_many
#   floor.insert_commits             rows/s: one single-row INSERT into jobs per commit, 8 clients
#   floor.insert_commits_32          the same from 32 clients
#   floor.bulk_insert                rows/s: INSERT ... SELECT generate_series of 100,000 jobs,
#                                    one commit each, FLOOR_BULK_RUNS (10) runs, 1 client
#   floor.copy_insert                rows/s: COPY FROM STDIN of 100,000 injector-shaped rows
#                                    into `records`, FLOOR_BULK_RUNS runs in one session
# Prints a Markdown table; with BENCH_FIGURES=file also appends each figure to it (bench/all.sh).
# Needs: PostgreSQL at 127.0.0.1:5432 (or DATABASE_URL), psql and pgbench (postgresql-client
# or the server's bin directory). BENCH_FLOOR_BIN=path migrates with that workhorse binary
# (`workhorse migrate`); otherwise psql applies migrations/*.sql in order, one transaction each.
# FLOOR_PREFILL=N sets the pending jobs loaded before each claim run (default: 70,000 per second).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pgbench >/dev/null; then
    for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/pgbench" ] && PATH="$PATH:$dir"; done
fi
command -v pgbench >/dev/null || { echo "pgbench not found (apt-get install postgresql-client)" >&2; exit 1; }
seconds="${FLOOR_SECONDS:-12}"
prefill="${FLOOR_PREFILL:-$(( seconds * 70000 ))}"
bulk_runs="${FLOOR_BULK_RUNS:-10}"
bulk_rows=100000
# No NOTICEs (TRUNCATE's cascade) in the progress.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="wh_bench_floor_$$"
url="${admin_url%/*}/$db"
tmp=$(mktemp -d)
cleanup() {
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null

if [ -n "${BENCH_FLOOR_BIN:-}" ]; then
    WORKHORSE_CONFIG_DIR=/nonexistent WORKHORSE_DATABASE__URL="$url" WORKHORSE_LOG__LEVEL=warn \
        "$BENCH_FLOOR_BIN" migrate >/dev/null
else
    for file in migrations/*.sql; do
        psql "$url" -q -X -v ON_ERROR_STOP=1 -1 -f "$file" >/dev/null
    done
fi

q() { psql "$url" -X -qAtc "$1"; }
# A figure: NAME VALUE UNIT DESCRIPTION, appended to $BENCH_FIGURES and to the table.
figure() {
    printf '| %s | %s %s | %s |\n' "$1" "$(python3 -c "print(f'{float(\"$2\"):,.0f}')")" "$3" "$4" \
        >>"$tmp/table"
    if [ -n "${BENCH_FIGURES:-}" ]; then
        printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$BENCH_FIGURES" ||
            echo "warning: could not write $BENCH_FIGURES" >&2
    fi
}
# pgbench_run ARGS...: run pgbench on the scratch database; prints "transactions tps".
pgbench_run() {
    local out
    out=$(pgbench -n -M prepared "$@" "$url" 2>&1) || { echo "$out" >&2; return 1; }
    grep -qE '^number of failed transactions: [1-9]' <<<"$out" && { echo "$out" >&2; return 1; }
    echo "$(awk '/number of transactions actually processed/ {print $NF}' <<<"$out" | cut -d/ -f1) \
$(awk '/^tps = / {print $3; exit}' <<<"$out")"
}
fill() { # fill N: N pending echo jobs, due now
    q "INSERT INTO jobs (id, kind, args, max_attempts, run_at)
       SELECT gen_random_uuid(), 'echo', '{}', 5, now() - interval '1 minute'
       FROM generate_series(1, $1)" >/dev/null
    q "VACUUM ANALYZE jobs"
}
fresh() { q "TRUNCATE jobs CASCADE" >/dev/null; q "VACUUM ANALYZE jobs"; }
rate() { python3 -c "import sys; print(round(float(sys.argv[1]) * float(sys.argv[2])))" "$1" "$2"; }

# claim_complete NAME SCRIPT DESCRIPTION: fill, run the claim/complete pairs, figure jobs/s.
claim_complete() {
    fresh
    echo "$1: loading $prefill pending jobs, then $seconds s of claims" >&2
    fill "$prefill"
    local out txns tps done left
    out=$(pgbench_run -c 8 -j 2 -T "$seconds" -f "bench/floor/$2.sql")
    read -r txns tps <<<"$out"
    done=$(q "SELECT count(*) FROM jobs WHERE state = 'succeeded'")
    left=$(q "SELECT count(*) FROM jobs WHERE state = 'pending'")
    [ "$left" -gt 0 ] || echo "warning: $1 ran out of pending jobs; raise FLOOR_PREFILL" >&2
    [ "$txns" -gt 0 ] || { echo "$1: no transaction completed" >&2; return 1; }
    # jobs/s = pairs/s × the jobs each pair actually completed
    figure "$1" "$(python3 -c "print(round($tps * $done / $txns))")" jobs/s "$3"
}

claim_complete floor.claim_complete claim_complete \
    "plain SQL: 8 clients, claim 100 jobs (FOR UPDATE SKIP LOCKED) + complete them, 2 commits per 100"
triggers=$(q "SELECT string_agg(tgname, ', ' ORDER BY tgname) FROM pg_trigger
              WHERE tgrelid = 'jobs'::regclass AND NOT tgisinternal")
q "ALTER TABLE jobs DISABLE TRIGGER USER"
claim_complete floor.claim_complete_no_triggers claim_complete \
    "the same with the jobs table's triggers disabled (${triggers:-none})"
q "ALTER TABLE jobs ENABLE TRIGGER USER"
claim_complete floor.claim_complete_engine_sql claim_complete_engine \
    "the same (triggers on), completing with the engine's complete_many statement as it is"

for clients in 8 32; do
    fresh
    echo "insert commits: $clients clients, $seconds s" >&2
    out=$(pgbench_run -c "$clients" -j 2 -T "$seconds" -f bench/floor/insert.sql)
    read -r _ tps <<<"$out"
    name=floor.insert_commits
    [ "$clients" = 8 ] || name="floor.insert_commits_$clients"
    figure "$name" "$(rate "$tps" 1)" rows/s \
        "plain SQL: $clients clients, one single-row INSERT into jobs per commit"
done

fresh
echo "bulk insert: $bulk_runs × $bulk_rows rows" >&2
out=$(pgbench_run -c 1 -t "$bulk_runs" -D rows="$bulk_rows" -f bench/floor/bulk_insert.sql)
read -r _ tps <<<"$out"
figure floor.bulk_insert "$(rate "$tps" "$bulk_rows")" rows/s \
    "plain SQL: INSERT INTO jobs ... SELECT generate_series of $bulk_rows rows, one commit each"
fresh

echo "COPY: $bulk_runs × $bulk_rows rows into records" >&2
psql "$url" -X -q -v rows="$bulk_rows" -f bench/floor/records.sql >"$tmp/records.csv"
columns="run_id, client_id, completed_at, transaction_id, customer_id, customer_name, merchant, \
category, amount, currency, payment_method, country, card_last4, status"
for _ in $(seq "$bulk_runs"); do
    echo "\\copy records ($columns) FROM '$tmp/records.csv' WITH (FORMAT csv)"
done >"$tmp/copy.sql"
started=$(date +%s%N)
psql "$url" -X -q -v ON_ERROR_STOP=1 -f "$tmp/copy.sql" >/dev/null
elapsed_ns=$(( $(date +%s%N) - started ))
copied=$(q "SELECT count(*) FROM records")
figure floor.copy_insert "$(python3 -c "print(round($copied / ($elapsed_ns / 1e9)))")" rows/s \
    "plain SQL: COPY FROM STDIN of $bulk_rows injector-shaped rows into records, one commit each"

changes=""
[ -z "$(git status --porcelain -- migrations bench/floor bench/floor.sh)" ] || changes=" + uncommitted changes"
echo "$(date +%F), commit $(git rev-parse --short HEAD)$changes, $(nproc) cores, $(pgbench --version), ${seconds} s per measure"
echo
echo "| floor | value | what |"
echo "|---|---|---|"
cat "$tmp/table"
