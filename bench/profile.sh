#!/usr/bin/env bash
# Where the CPU goes while a benchmark runs: starts COMMAND, waits DELAY seconds (set-up), then
# samples every CPU with perf for SECONDS and prints the share of each process (postgres
# backends, the daemon or benchmark program, the load generator) and the hottest symbols.
# Usage: bench/profile.sh DELAY SECONDS COMMAND [ARGS...]
#   e.g. bench/profile.sh 20 10 bench/notify.sh
# Needs perf (Debian package linux-perf) and root or kernel.perf_event_paranoid <= 0.
# The profile is kept in ${PROFILE_OUT:-/tmp}/perf.data for `perf report`.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
delay=$1 seconds=$2
shift 2
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
out="${PROFILE_OUT:-/tmp}/perf.data"
"$@" >"${out%.data}.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
sleep "$delay"
kill -0 "$pid" 2>/dev/null || { echo "the command ended before the profile began" >&2; exit 1; }
perf record -q -a -g -F 199 -o "$out" -- sleep "$seconds" 2>/dev/null
echo "## CPU by process ($seconds s, every CPU)"
perf report -i "$out" --stdio --no-children --sort comm 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo
echo "## Hottest symbols"
perf report -i "$out" --stdio --no-children --sort comm,sym -g none 2>/dev/null \
    | grep -E '^ +[0-9]' | head -40
wait "$pid" || true
trap - EXIT
