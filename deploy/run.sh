#!/usr/bin/env bash
# Bring Workhorse up on this machine with every feature working: installs the runtime packages
# that are missing (PostgreSQL server binaries for the embedded database, Chromium and
# chromedriver for scraping), builds the release binary and runs `workhorse serve`.
# With no configuration it uses embedded defaults: data in ./data, API on 127.0.0.1:8080.
# Extra arguments go to `workhorse serve` (e.g. --config my.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/packages.sh

apt_install postgresql chromium chromium-driver
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-release}"
cargo build --release --locked --bin workhorse
bin="$CARGO_TARGET_DIR/release/workhorse"
echo "==> starting workhorse; get a token in another shell with:"
echo "    $bin admin create-token"
exec "$bin" serve "$@"
