#!/usr/bin/env bash
# Install or upgrade workhorse as a systemd service on a Debian/Ubuntu host.
# Safe to run again: it never overwrites /etc/workhorse/workhorse.toml or
# /etc/workhorse/workhorse.env once they exist. See docs/deploy.md.
set -euo pipefail

readonly SERVICE_USER=workhorse
readonly CONF_DIR=/etc/workhorse
readonly STATE_DIR=/var/lib/workhorse
readonly BIN_DEST=/usr/local/bin/workhorse
readonly UNIT_DEST=/etc/systemd/system/workhorse.service

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root

usage() {
    cat <<EOF
Usage: sudo $0 [--no-packages] [BINARY]

Install or upgrade the workhorse daemon as the systemd service workhorse.service.

  BINARY          the workhorse binary to install (default: \$WORKHORSE_BIN,
                  else \${CARGO_TARGET_DIR:-<repo>/target}/release/workhorse)
  --no-packages   do not apt-get install the runtime packages (PostgreSQL
                  server binaries, chromium, chromium-driver)
  -h, --help      show this help

What it does (each step is skipped when already done):
  - creates the system user and group '$SERVICE_USER' (home $STATE_DIR, no login shell)
  - creates $CONF_DIR (0750 root:$SERVICE_USER) and $STATE_DIR
  - installs BINARY to $BIN_DEST
  - installs systemd/workhorse.service to $UNIT_DEST
    (always overwritten; put local changes in: systemctl edit workhorse)
  - writes $CONF_DIR/workhorse.toml and $CONF_DIR/workhorse.env from the
    examples in deploy/, only if they do not exist yet
  - copies the cron schedules in jobs/*.toml to $CONF_DIR/jobs/, each only if
    it does not exist yet
  - if systemd is running: systemctl daemon-reload; systemctl enable --now workhorse
EOF
}

log() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

# ---- arguments --------------------------------------------------------------
install_packages=1
bin_src="${WORKHORSE_BIN:-}"
bin_arg=""
while (($# > 0)); do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --no-packages) install_packages=0 ;;
        --) shift; break ;;
        -*) die "unknown option: $1 (see --help)" ;;
        *)
            [[ -z "$bin_arg" ]] || die "more than one BINARY given (see --help)"
            bin_arg="$1"
            ;;
    esac
    shift
done
if (($# > 0)); then
    [[ -z "$bin_arg" && $# -eq 1 ]] || die "more than one BINARY given (see --help)"
    bin_arg="$1"
fi
if [[ -n "$bin_arg" ]]; then
    bin_src="$bin_arg"
fi
: "${bin_src:=${CARGO_TARGET_DIR:-$repo_root/target}/release/workhorse}"

[[ $EUID -eq 0 ]] || die "must run as root (try: sudo $0 ...)"

unit_src="$repo_root/systemd/workhorse.service"
toml_src="$repo_root/deploy/workhorse.example.toml"
env_src="$repo_root/deploy/workhorse.env.example"
for f in "$unit_src" "$toml_src" "$env_src"; do
    [[ -f "$f" ]] || die "missing $f (run this script from a workhorse checkout)"
done
[[ -f "$bin_src" && -x "$bin_src" ]] ||
    die "no executable at $bin_src; build it first (cargo build --release --locked) or pass its path"

# ---- runtime packages -------------------------------------------------------
# A server binary pair that the daemon can find (it searches
# /usr/lib/postgresql/*/bin for initdb and postgres).
have_pg_server() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/postgres" ]] && return 0
    done
    return 1
}

install_runtime_packages() {
    local need_pg=0 browser_pkgs=()
    have_pg_server || need_pg=1
    command -v chromium >/dev/null 2>&1 || browser_pkgs+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || browser_pkgs+=(chromium-driver)
    if ((need_pg == 0 && ${#browser_pkgs[@]} == 0)); then
        log "runtime packages already present"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found; install a PostgreSQL server, chromium and chromedriver yourself, then rerun with --no-packages"

    export DEBIAN_FRONTEND=noninteractive
    log "apt-get update"
    apt-get update -q

    if ((need_pg)); then
        # Only the server binaries (initdb, postgres) are needed: the daemon
        # runs its own private cluster in $STATE_DIR/postgres. Install the
        # versioned package that the 'postgresql' metapackage points at
        # (postgresql-15 on Debian 12), not the metapackage itself, and fall
        # back to 'postgresql' if that cannot be worked out.
        local pg_pkg
        pg_pkg="$(apt-cache depends postgresql 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^postgresql-[0-9]+$/ { print $2; exit }')"
        pg_pkg="${pg_pkg:-postgresql}"
        # Every Debian postgresql-NN package (not only the metapackage)
        # creates and starts a system cluster "main" on port 5432 when
        # installed. workhorse does not use it, so turn that off with a
        # postgresql-common drop-in. This is only done when this script
        # installs the server. Delete the file if you want pg_createcluster's
        # default back.
        local cc_dir=/etc/postgresql-common/createcluster.d
        if [[ ! -e "$cc_dir/workhorse.conf" ]]; then
            log "disabling creation of the system 'main' cluster ($cc_dir/workhorse.conf)"
            install -d -m 0755 "$cc_dir"
            cat >"$cc_dir/workhorse.conf" <<'EOF'
# Written by workhorse's deploy/install.sh. workhorse runs its own embedded
# PostgreSQL cluster, so installing a postgresql-NN package should not also
# create (and start) the system cluster "main".
create_main_cluster = false
EOF
        fi
        log "apt-get install $pg_pkg"
        apt-get install -y -q --no-install-recommends "$pg_pkg"
        have_pg_server || die "installed $pg_pkg but found no /usr/lib/postgresql/*/bin/{initdb,postgres}"
    fi

    if ((${#browser_pkgs[@]} > 0)); then
        # With recommends: chromium-common recommends the fonts that
        # rendered pages need.
        log "apt-get install ${browser_pkgs[*]}"
        apt-get install -y -q "${browser_pkgs[@]}"
    fi
}

if ((install_packages)); then
    install_runtime_packages
else
    log "skipping runtime packages (--no-packages)"
    have_pg_server ||
        printf 'warning: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; the embedded database needs them unless database.url is set\n' >&2
fi

# ---- user, group, directories -----------------------------------------------
if ! getent group "$SERVICE_USER" >/dev/null; then
    log "creating system group $SERVICE_USER"
    groupadd --system "$SERVICE_USER"
fi
if ! getent passwd "$SERVICE_USER" >/dev/null; then
    log "creating system user $SERVICE_USER"
    nologin="$(command -v nologin 2>/dev/null || echo /usr/sbin/nologin)"
    useradd --system --gid "$SERVICE_USER" --home-dir "$STATE_DIR" --no-create-home \
        --shell "$nologin" --comment "workhorse daemon" "$SERVICE_USER"
else
    home="$(getent passwd "$SERVICE_USER" | cut -d: -f6)"
    [[ "$home" == "$STATE_DIR" ]] ||
        printf 'warning: user %s exists with home %s, not %s; chromium keeps its profile under HOME\n' \
            "$SERVICE_USER" "$home" "$STATE_DIR" >&2
fi

install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR"
# systemd's StateDirectory= also creates and chowns this on start; creating it
# here lets the admin CLI run before the first start.
install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"

# ---- binary and unit --------------------------------------------------------
changed=0
install -d -m 0755 "$(dirname "$BIN_DEST")"
if [[ -f "$BIN_DEST" ]] && cmp -s "$bin_src" "$BIN_DEST"; then
    log "$BIN_DEST is up to date"
else
    log "installing $bin_src -> $BIN_DEST"
    # Copy next to the target and rename over it. The rename is atomic and
    # works while the old binary is running (no "Text file busy").
    install -m 0755 -o root -g root "$bin_src" "$BIN_DEST.new"
    mv -f "$BIN_DEST.new" "$BIN_DEST"
    changed=1
fi

if [[ -f "$UNIT_DEST" ]] && cmp -s "$unit_src" "$UNIT_DEST"; then
    log "$UNIT_DEST is up to date"
else
    log "installing $UNIT_DEST"
    install -m 0644 -o root -g root "$unit_src" "$UNIT_DEST"
    changed=1
fi

# ---- configuration (never overwritten) --------------------------------------
install_if_absent() {
    local src="$1" dest="$2"
    if [[ -e "$dest" ]]; then
        log "keeping existing $dest"
    else
        log "writing $dest"
        install -m 0640 -o root -g "$SERVICE_USER" "$src" "$dest"
    fi
}
install_if_absent "$toml_src" "$CONF_DIR/workhorse.toml"
# 0640 root:workhorse: it holds secrets. The service user may read it (the
# admin CLI needs the same settings); only root may change it.
install_if_absent "$env_src" "$CONF_DIR/workhorse.env"
# Cron schedules: one TOML per schedule. Shipped ones are added when missing and never
# overwritten, so an operator's edits (enabled = false, another time) survive upgrades.
install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR/jobs"
for schedule in "$repo_root"/jobs/*.toml; do
    [[ -e "$schedule" ]] || continue
    install_if_absent "$schedule" "$CONF_DIR/jobs/$(basename "$schedule")"
done
# The injector's sample datasets (jobs/data/*.csv), kept up to date with the release.
install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR/jobs/data"
for dataset in "$repo_root"/jobs/data/*.csv; do
    [[ -e "$dataset" ]] || continue
    install -m 0640 -o root -g "$SERVICE_USER" "$dataset" "$CONF_DIR/jobs/data/"
done

# ---- systemd ----------------------------------------------------------------
if [[ -d /run/systemd/system ]]; then
    was_active=0
    systemctl is-active --quiet workhorse && was_active=1
    log "systemctl daemon-reload"
    systemctl daemon-reload
    log "systemctl enable --now workhorse"
    if ! systemctl enable --now workhorse; then
        die "workhorse did not start; see: systemctl status workhorse; journalctl -u workhorse -b"
    fi
    if ((was_active && changed)); then
        log "workhorse was already running the previous version; restart it to switch over:"
        echo "    systemctl restart workhorse"
    fi
else
    log "systemd is not running here; on the target host run:"
    echo "    systemctl daemon-reload"
    echo "    systemctl enable --now workhorse"
fi

cat <<EOF

Done. Logs: journalctl -u workhorse -f
Config: $CONF_DIR/workhorse.toml, secrets: $CONF_DIR/workhorse.env

Create the first admin token with:
    sudo -u workhorse workhorse admin create-token --config $CONF_DIR/workhorse.toml
If you set WORKHORSE_* variables in $CONF_DIR/workhorse.env (for example the
database URL), load them first, as the service does:
    sudo -u workhorse bash -c 'set -a; . $CONF_DIR/workhorse.env; set +a; exec workhorse admin create-token --config $CONF_DIR/workhorse.toml'
EOF
