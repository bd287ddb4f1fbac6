#!/usr/bin/env bash
# Benchmark a crawl on this machine: a generated local site of 120 pages (~3 KB each, every
# page linked from the index, each page linking on to the next three) served by Python's
# http.server on loopback, crawled with limit 100 by `workhorse serve` through real Chromium:
# (1) at the default politeness (one page at a time, 250 ms between pages) and (2) with it off
# (2 pages at once, the scrape pool's size, no delay). Pages/s from the crawl's creation to its
# last page, and the daemon's RSS at the end. Prints a Markdown table for docs/benchmarks.md.
# Needs: a release build (WORKHORSE_BIN=path runs another build, e.g. a debug one),
# chromedriver and Chromium, python3, PostgreSQL at 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
bin="${WORKHORSE_BIN:-$CARGO_TARGET_DIR/release/workhorse}"
unset WORKHORSE_BIN
[ -x "$bin" ] || cargo build --release --locked --bin workhorse
port=18182
site_port=18183
tmp=$(mktemp -d)
db="wh_bench_crawl_$$"
pid=""
site_pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    [ -n "$site_pid" ] && kill "$site_pid" 2>/dev/null && wait "$site_pid" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null

# The site: /index.html links every page; page N links N+1..N+3.
mkdir -p "$tmp/site"
python3 - "$tmp/site" <<'PY'
import sys, pathlib
root = pathlib.Path(sys.argv[1])
n = 120
para = " ".join(["Sentence number {} about bread, flour, water and patience.".format(i) for i in range(30)])
def page(title, body):
    return ("<!doctype html><html lang='en'><head><title>{0}</title></head><body>"
            "<nav><a href='/index.html'>Home</a></nav><main><article><h1>{0}</h1>{1}"
            "</article></main><footer>Footer</footer></body></html>").format(title, body)
links = "".join("<li><a href='/p/{0}.html'>Page {0}</a></li>".format(i) for i in range(n))
(root / "index.html").write_text(page("Index", "<p>{}</p><ul>{}</ul>".format(para, links)))
(root / "p").mkdir()
for i in range(n):
    nxt = "".join("<a href='/p/{0}.html'>next {0}</a> ".format(j % n) for j in range(i + 1, i + 4))
    (root / "p" / "{}.html".format(i)).write_text(page("Page {}".format(i), "<p>{}</p><p>{}</p>".format(para, nxt)))
PY
(cd "$tmp/site" && exec python3 -m http.server "$site_port" --bind 127.0.0.1 >/dev/null 2>&1) &
site_pid=$!

url="postgres://postgres@127.0.0.1:5432/$db"
env WORKHORSE_CONFIG_DIR="$tmp/none" WORKHORSE_HTTP__LISTEN="127.0.0.1:$port" \
    WORKHORSE_LOG__LEVEL=warn WORKHORSE_DATA_DIR="$tmp/data" WORKHORSE_DATABASE__URL="$url" \
    WORKHORSE_EGRESS__ALLOW='["127.0.0.1"]' "$bin" serve >>"$tmp/log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/log"; exit 1; }
    sleep 0.05
done
token=$(WORKHORSE_DATABASE__URL="$url" WORKHORSE_CONFIG_DIR="$tmp/none" "$bin" admin create-token | tail -1)

# crawl BODY: run one crawl to its end; prints "seconds pages".
crawl() {
    local id status
    id=$(curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -d "$1" "http://127.0.0.1:$port/v1/crawls" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    while :; do
        status=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/crawls/$id?limit=1")
        if ! grep -q '"status":"running"' <<<"$status"; then break; fi
        sleep 0.2
    done
    psql -h 127.0.0.1 -U postgres -d "$db" -Atc \
        "SELECT round(extract(epoch FROM max(s.finished_at) - c.created_at)::numeric, 2), c.pages_done
         FROM crawls c JOIN scrapes s ON s.crawl_id = c.id WHERE c.id = '$id' GROUP BY c.id" | tr '|' ' '
}

site="http://127.0.0.1:$site_port/index.html"
# A first crawl of one page starts chromedriver and the pool, outside the figures.
crawl "{\"url\":\"$site\",\"limit\":1}" >/dev/null
read -r polite_s polite_n < <(crawl "{\"url\":\"$site\",\"limit\":100}")
read -r fast_s fast_n < <(crawl "{\"url\":\"$site\",\"limit\":100,\"delay_ms\":0,\"max_concurrency\":2,\"ignore_sitemap\":true}")
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
rate() { python3 -c "print(f'{$2 / $1:.2f}')"; }

echo "$(date +%F), commit $(git rev-parse --short HEAD), $(nproc) cores, $(chromium --version 2>/dev/null | head -1), $(basename "$(dirname "$bin")") build"
echo
cat <<TABLE
| crawl of 100 local pages | time | pages/s |
|---|---|---|
| default politeness (1 page at a time, 250 ms apart) | ${polite_s} s (${polite_n} pages) | $(rate "$polite_s" "$polite_n") |
| politeness off (2 at once, no delay) | ${fast_s} s (${fast_n} pages) | $(rate "$fast_s" "$fast_n") |
| daemon RSS after both (without Chromium) | $(( rss_kib / 1024 )) MiB | |
TABLE
