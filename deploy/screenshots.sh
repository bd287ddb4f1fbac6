#!/usr/bin/env bash
# Refresh the dashboard screenshots in docs/dashboard/: runs the Chromium page test against a
# test daemon with sample data and keeps its screenshots (1280×800, and one at a phone's
# 390×844). Needs what
# deploy/test.sh installs (PostgreSQL, Chromium, chromedriver).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
mkdir -p docs/dashboard
WORKHORSE_UI_SCREENSHOTS="$PWD/docs/dashboard" \
    cargo test --locked --test api ui_pages -- --exact \
    ui_pages::every_page_shows_its_data_without_console_errors_and_fits_a_phone
ls -l docs/dashboard
