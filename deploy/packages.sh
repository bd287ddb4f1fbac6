#!/usr/bin/env bash
# Shared by deploy/run.sh and deploy/test.sh: install what is missing from Debian's packages
# (one `apt-get update`, only when something is missing) and make sure the machine's
# PostgreSQL is up. Source it; do not run it.

# apt_install PKG...: install the packages that are not installed yet.
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "${WORKHORSE_APT_UPDATED:-}" ]; then
        echo "==> apt-get update"
        $sudo apt-get update -qq
        export WORKHORSE_APT_UPDATED=1
    fi
    echo "==> apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_local_postgres: the tests use the machine's PostgreSQL at 127.0.0.1:5432 as user
# postgres without a password; install and start it when it is not there.
ensure_local_postgres() {
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        return 0
    fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql postgresql-client
    fi
    local version
    version=$(ls /etc/postgresql | sort -n | tail -1)
    echo "==> starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.5
    done
    pg_isready -h 127.0.0.1 -p 5432
    # A fresh Debian cluster asks for passwords over TCP; the test database is local-only.
    if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        echo "==> allowing trust auth from 127.0.0.1 in $hba (test machine)"
        sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
}
