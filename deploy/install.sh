#!/bin/sh
# Install edgeanon on a Jetson (JetPack 5 or 6) or any Linux box: venv, user, config, models, units.
# Idempotent: run it again after `git pull` to update. See deploy/DEPLOY.md for the whole walk-through.
set -eu

usage() {
    cat <<'EOF'
Usage: deploy/install.sh [OPTIONS]

Installs edgeanon from this source tree:
  /opt/edgeanon/app            a copy of the runtime (edgeanon/, deploy/, systemd/; the host toolkit export/ stays behind)
  /opt/edgeanon/.venv          Python venv with --system-site-packages (JetPack's TensorRT and OpenCV)
  /etc/edgeanon/CAMERA.toml    the camera's config (never overwritten once there)
  /etc/edgeanon/tls/           broker CA and this device's client certificate (with --tls-dir)
  /var/lib/edgeanon/models     the ONNX models (from models/, see `make setup`), and beside them the
                               TensorRT engines built on first boot by edgeanon-engines.service;
                               owned by user edgeanon-models, only readable by the daemon
  /etc/systemd/system          edgeanon@.service, edgeanon-engines.service (enabled, not started), and
                               edgeanon@NAME.service.d/network.conf: the only addresses the daemon may
                               reach (the broker, an RTSP camera, DNS), resolved from the config
and system users `edgeanon` (the daemon; groups video, and jtop when jetson-stats is installed) and
`edgeanon-models` (builds the engines). Run it again after the broker's address changes.

Options:
  --camera NAME     camera id: config /etc/edgeanon/NAME.toml, unit edgeanon@NAME (default: cam0)
  --broker HOST     the site broker's host name, written into a new config
  --tls-dir DIR     install DIR/ca.crt, DIR/NAME.crt and DIR/NAME.key (from deploy/certs.sh) and
                    point a new config at them (TLS, port 8883)
  --python PYTHON   interpreter for the venv (default: python3 on JetPack 6, python3.10 on JetPack 5)
  --dry-run         change nothing on the system: print every command that would run
  --root DIR        with --dry-run: lay the files out under DIR instead of / (for tests and review)
  --uninstall       stop, disable and remove units, app and venv; keep config, models and the user
  --purge           with --uninstall: also remove /etc/edgeanon, /var/lib/edgeanon and the user
  -h, --help        show this help

Examples:
  sudo deploy/install.sh --camera front-door --broker broker.site1.lan --tls-dir ./pki
  deploy/install.sh --dry-run --root /tmp/preview && find /tmp/preview
  sudo deploy/install.sh --uninstall
EOF
}

SRC=$(cd "$(dirname "$0")/.." && pwd)
CAMERA=cam0
TLS_DIR=
BROKER=
PYTHON=
DRY_RUN=0
ROOT=
UNINSTALL=0
PURGE=0

die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
info() { printf '==> %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --camera) [ $# -ge 2 ] || die "--camera needs a name"; CAMERA=$2; shift ;;
        --tls-dir) [ $# -ge 2 ] || die "--tls-dir needs a directory"; TLS_DIR=$2; shift ;;
        --broker) [ $# -ge 2 ] || die "--broker needs a host name"; BROKER=$2; shift ;;
        --python) [ $# -ge 2 ] || die "--python needs an interpreter"; PYTHON=$2; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
        --dry-run) DRY_RUN=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done

case "$CAMERA" in
    ''|*[!A-Za-z0-9_-]*) die "--camera '$CAMERA': use letters, digits, '-' and '_' only (it names a topic and a unit)" ;;
esac
case "$BROKER" in
    *[!A-Za-z0-9.:-]*) die "--broker '$BROKER': not a host name or address" ;;
esac
if [ -n "$TLS_DIR" ]; then
    for f in ca.crt "$CAMERA.crt" "$CAMERA.key"; do
        [ -f "$TLS_DIR/$f" ] || die "--tls-dir $TLS_DIR: $f missing (make it with: deploy/certs.sh device $CAMERA)"
    done
fi
if [ -n "$ROOT" ]; then
    [ "$DRY_RUN" = 1 ] || die "--root is only for --dry-run (it lays files out without installing)"
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" != / ] || die "--root /: run without --dry-run to install for real"
fi
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo), or preview with --dry-run --root DIR"
fi
[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge goes with --uninstall"

PREFIX=/opt/edgeanon
APP=$PREFIX/app
VENV=$PREFIX/.venv
CONF=/etc/edgeanon
STATE=/var/lib/edgeanon
CACHE=/var/cache/edgeanon
UNITS=/etc/systemd/system
USER_NAME=edgeanon
# Owns the models and builds the engines: the daemon's user cannot change what it runs.
MODELS_USER=edgeanon-models

# Files are written when installing for real, or under --root in a dry run; a bare --dry-run only prints.
WRITE_FILES=1
if [ "$DRY_RUN" = 1 ] && [ -z "$ROOT" ]; then
    WRITE_FILES=0
fi

# A command that changes the system: printed in a dry run, run otherwise.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf 'would run: %s\n' "$*"
    else
        "$@"
    fi
}

# A file operation: done for real or under --root; printed by a bare --dry-run.
fs() {
    if [ "$WRITE_FILES" = 1 ]; then
        "$@"
    else
        printf 'would run: %s\n' "$*"
    fi
}

# systemctl on the files only: under --root it runs for real (offline, touches only DIR).
systemctl_files() {
    if [ -n "$ROOT" ]; then
        systemctl --quiet --root="$ROOT" "$@"
    else
        run systemctl "$@"
    fi
}

# Copy SRC to DEST (under ROOT) with MODE, only when the content differs.
put() {
    if [ "$WRITE_FILES" = 1 ] && [ -f "$ROOT$2" ] && cmp -s "$1" "$ROOT$2"; then
        fs chmod "$3" "$ROOT$2"
        return 0
    fi
    fs install -D -m "$3" "$1" "$ROOT$2"
}

# --- platform -------------------------------------------------------------------------------
L4T=none
JETPACK=none
detect_platform() {
    release_file=$ROOT/etc/nv_tegra_release
    if [ ! -f "$release_file" ]; then
        warn "no /etc/nv_tegra_release: not a Jetson; installing the generic ONNX Runtime setup"
        return 0
    fi
    line=$(head -n 1 "$release_file")
    major=$(printf '%s\n' "$line" | sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9.]*\).*/\1/p')
    revision=$(printf '%s\n' "$line" | sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9.]*\).*/\2/p')
    [ -n "$major" ] || die "$release_file: cannot read the L4T release from '$line'"
    L4T=$major.$revision
    case "$major" in
        35) JETPACK=5 ;;
        36) JETPACK=6 ;;
        *) die "L4T R$L4T (from $release_file) is not supported: flash JetPack 5 (L4T R35) or 6 (L4T R36)" ;;
    esac
    info "Jetson with L4T R$L4T (JetPack $JETPACK)"
}

choose_python() {
    if [ -n "$PYTHON" ]; then
        return 0
    fi
    case "$JETPACK" in
        # JetPack 5 ships Python 3.8; edgeanon needs >= 3.10 (see requirements-jetson.txt for what that costs).
        5) PYTHON=python3.10 ;;
        *) PYTHON=python3 ;;
    esac
    if [ "$DRY_RUN" = 0 ]; then
        command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: on JetPack 5 install python3.10 and python3.10-venv (deadsnakes PPA)"
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than 3.10"
    fi
}

requirements_file() {
    if [ "$JETPACK" = none ]; then
        echo requirements.txt
    else
        echo requirements-jetson.txt
    fi
}

# --- install steps ----------------------------------------------------------------------------
create_user() {
    if [ "$DRY_RUN" = 1 ] || ! getent passwd "$USER_NAME" >/dev/null; then
        run useradd --system --user-group --home-dir "$STATE" --no-create-home \
            --shell /usr/sbin/nologin --comment "edgeanon daemon" "$USER_NAME"
    fi
    if [ "$DRY_RUN" = 1 ] || ! getent passwd "$MODELS_USER" >/dev/null; then
        run useradd --system --user-group --home-dir "$STATE/models" --no-create-home \
            --shell /usr/sbin/nologin --comment "edgeanon engine builder" "$MODELS_USER"
    fi
    run usermod -a -G video "$USER_NAME"
    run usermod -a -G video "$MODELS_USER"
    if [ "$DRY_RUN" = 0 ] && getent group jtop >/dev/null; then
        run usermod -a -G jtop "$USER_NAME"
    fi
}

install_app() {
    info "sources -> $APP"
    if [ "$SRC" = "$ROOT$APP" ]; then
        return 0
    fi
    items=
    for item in edgeanon deploy systemd pyproject.toml setup.py MANIFEST.in LICENSE README.md requirements.txt \
            requirements-jetson.txt; do
        [ -e "$SRC/$item" ] && items="$items $item"
    done
    fs rm -rf "$ROOT$APP.new"
    fs mkdir -p "$ROOT$APP.new"
    if [ "$WRITE_FILES" = 1 ]; then
        # shellcheck disable=SC2086 # items is a list of plain names from the loop above
        (cd "$SRC" && tar cf - --exclude=__pycache__ --exclude='*.pyc' $items) | (cd "$ROOT$APP.new" && tar xf -)
    else
        printf 'would run: copy%s from %s\n' "$items" "$SRC"
    fi
    fs rm -rf "$ROOT$APP"
    fs mv "$ROOT$APP.new" "$ROOT$APP"
    fs chmod 0755 "$ROOT$PREFIX" "$ROOT$APP"
}

install_venv() {
    reqs=$(requirements_file)
    info "venv $VENV ($PYTHON, system site-packages, $reqs)"
    if [ "$DRY_RUN" = 1 ] || [ ! -x "$VENV/bin/python" ]; then
        run "$PYTHON" -m venv --system-site-packages "$VENV"
    fi
    run "$VENV/bin/python" -m pip install --upgrade pip
    run "$VENV/bin/python" -m pip install -r "$APP/$reqs"
    # --no-deps: the requirements above chose the device's numpy/OpenCV/ONNX Runtime; pip must not
    # replace JetPack's GStreamer-enabled OpenCV with a wheel.
    run "$VENV/bin/python" -m pip install --no-deps --force-reinstall "$APP"
}

install_config() {
    dest=$CONF/$CAMERA.toml
    fs mkdir -p "$ROOT$CONF"
    fs chmod 0750 "$ROOT$CONF"
    run chown "root:$USER_NAME" "$CONF"
    if [ "$WRITE_FILES" = 1 ] && [ -f "$ROOT$dest" ]; then
        info "config $dest exists: kept as it is"
    else
        info "config -> $dest"
        example=$SRC/deploy/edgeanon.example.toml
        if [ ! -f "$example" ]; then
            warn "deploy/edgeanon.example.toml missing: writing a minimal config"
            example=$(mktemp)
            minimal_config > "$example"
            trap 'rm -f "$example"' EXIT
        fi
        if [ "$WRITE_FILES" = 1 ]; then
            sed -e "$(config_edits)" "$example" > "$ROOT$dest.tmp"
            mv "$ROOT$dest.tmp" "$ROOT$dest"
        else
            printf 'would run: sed -e %s %s > %s\n' "'$(config_edits)'" "$example" "$dest"
        fi
        fs chmod 0640 "$ROOT$dest"
    fi
    run chown "root:$USER_NAME" "$dest"
    if [ -n "$TLS_DIR" ]; then
        put "$TLS_DIR/ca.crt" "$CONF/tls/ca.crt" 0644
        put "$TLS_DIR/$CAMERA.crt" "$CONF/tls/$CAMERA.crt" 0644
        put "$TLS_DIR/$CAMERA.key" "$CONF/tls/$CAMERA.key" 0640
        run chown "root:$USER_NAME" "$CONF/tls/$CAMERA.key"
    fi
}

# The sed script that turns the example config into this camera's: its id, and with --broker and
# --tls-dir the broker's address and this device's certificate (TLS on port 8883).
config_edits() {
    printf 's|^camera_id *=.*|camera_id = "%s"|\n' "$CAMERA"
    if [ -n "$BROKER" ]; then
        printf 's|^host *=.*|host = "%s"|\n' "$BROKER"
    fi
    if [ -n "$TLS_DIR" ]; then
        printf 's|^port *= *1883$|port = 8883|\n'
        printf 's|^#* *ca *=.*|ca = "%s"|\n' "$CONF/tls/ca.crt"
        printf 's|^#* *cert *=.*|cert = "%s"|\n' "$CONF/tls/$CAMERA.crt"
        printf 's|^#* *key *=.*|key = "%s"|\n' "$CONF/tls/$CAMERA.key"
    fi
}

minimal_config() {
    cat <<'EOF'
# edgeanon config (written by deploy/install.sh). Every key: deploy/edgeanon.example.toml.
camera_id = "cam0"

[source]
uri = "csi://0"

[mqtt]
host = "localhost"
port = 1883

[mqtt.tls]
# ca = ""
# cert = ""
# key = ""
EOF
}

install_models() {
    info "models -> $STATE/models"
    fs mkdir -p "$ROOT$STATE/models" "$ROOT$CACHE"
    found=0
    for model in "$SRC"/models/*.onnx; do
        [ -f "$model" ] || continue
        found=1
        put "$model" "$STATE/models/$(basename "$model")" 0644
    done
    [ "$found" = 1 ] || warn "no models/*.onnx in $SRC: run 'make setup' on a workstation and copy models/ here"
    fs chmod 0755 "$ROOT$STATE" "$ROOT$STATE/models"
    # The daemon's StateDirectory= must already belong to it: systemd would otherwise chown the whole
    # tree, models included, to the daemon's user at its first start.
    run chown "$USER_NAME:$USER_NAME" "$STATE" "$CACHE"
    run chown -R "$MODELS_USER:$MODELS_USER" "$STATE/models"
}

# The value of KEY in [SECTION] of a TOML file, when it is a plain "string" (first match; else nothing).
toml_string() {
    awk -v section="$2" -v key="$3" '
        /^[[:space:]]*\[/ { line = $0; gsub(/[[:space:]]/, "", line); current = line; next }
        current == "[" section "]" && $0 ~ "^[[:space:]]*" key "[[:space:]]*=[[:space:]]*\"" {
            sub(/^[^=]*=[[:space:]]*"/, ""); sub(/".*$/, ""); print; exit
        }' "$1"
}

# The host of a URI: no scheme, no user:password@ (up to the last @, as edgeanon.scrub.split_uri reads it: a
# password may hold '/', '#', '?'), no path, no port.
uri_host() {
    rest=${1#*://}
    rest=${rest##*@}
    host=${rest%%[/?#]*}
    case "$host" in
        \[*\]*) host=${host#\[}; host=${host%%\]*} ;;
        *:*) host=${host%:*} ;;
    esac
    printf '%s\n' "$host"
}

is_ip() {
    case "$1" in
        *[!0-9.]*) case "$1" in *:*) return 0 ;; *) return 1 ;; esac ;;
        *.*.*.*) return 0 ;;
        *) return 1 ;;
    esac
}

# The addresses the daemon needs, one per line: the broker's, an RTSP camera's, and the DNS servers
# when a name must be looked up. Loopback needs no entry (the unit allows localhost).
allowed_addresses() {
    config=$1
    needs_dns=0
    hosts=$(toml_string "$config" mqtt host)
    [ -n "$hosts" ] || hosts=localhost
    uri=$(toml_string "$config" source uri)
    case "$uri" in
        rtsp://*|rtsps://*) hosts="$hosts $(uri_host "$uri")" ;;
    esac
    for host in $hosts; do
        case "$host" in localhost|127.*|::1) continue ;; esac
        if is_ip "$host"; then
            printf '%s\n' "$host"
            continue
        fi
        needs_dns=1
        addresses=$(getent ahosts "$host" 2>/dev/null | awk '{ print $1 }' | sort -u)
        if [ -z "$addresses" ]; then
            warn "$host does not resolve here: the daemon may reach only localhost until you rerun install.sh, or add IPAddressAllow= to $UNITS/edgeanon@$CAMERA.service.d/network.conf"
            continue
        fi
        printf '%s\n' "$addresses"
    done
    if [ "$needs_dns" = 1 ] && [ -f "$ROOT/etc/resolv.conf" ]; then
        awk '$1 == "nameserver" && $2 !~ /^127\./ && $2 != "::1" { print $2 }' "$ROOT/etc/resolv.conf"
    fi
}

install_network_dropin() {
    config=$ROOT$CONF/$CAMERA.toml
    dropin=$UNITS/edgeanon@$CAMERA.service.d/network.conf
    if [ ! -f "$config" ]; then
        info "no $CONF/$CAMERA.toml here: $dropin not written (the daemon may reach only localhost)"
        return 0
    fi
    info "network allow-list -> $dropin"
    tmp=$(mktemp)
    {
        printf '# Written by deploy/install.sh from %s: the only addresses edgeanon@%s may reach
' \
            "$CONF/$CAMERA.toml" "$CAMERA"
        printf '# besides localhost (IPAddressDeny=any in edgeanon@.service). Rerun install.sh when they change.\n'
        printf '[Service]\n'
        allowed_addresses "$config" | sort -u | while read -r address; do
            [ -n "$address" ] && printf 'IPAddressAllow=%s\n' "$address"
        done
    } > "$tmp"
    put "$tmp" "$dropin" 0644
    rm -f "$tmp"
}

install_units() {
    info "units -> $UNITS"
    # edgeanon.service (every camera of /etc/edgeanon/edgeanon.toml in one daemon) is installed, not enabled.
    for unit in edgeanon@.service edgeanon.service edgeanon-engines.service; do
        put "$SRC/systemd/$unit" "$UNITS/$unit" 0644
    done
    install_network_dropin
    run systemctl daemon-reload
    systemctl_files enable edgeanon-engines.service "edgeanon@$CAMERA.service"
    if [ "$DRY_RUN" = 0 ] && systemctl is-enabled --quiet jtop.service 2>/dev/null; then
        info "jtop.service found: telemetry from jetson-stats"
    fi
}

install_all() {
    detect_platform
    choose_python
    create_user
    install_app
    install_venv
    install_config
    install_models
    install_units
    info "done. Next: edit $CONF/$CAMERA.toml, then: systemctl start edgeanon@$CAMERA; $VENV/bin/edgeanon doctor --config $CONF/$CAMERA.toml"
}

# --- uninstall --------------------------------------------------------------------------------
uninstall_all() {
    info "uninstalling edgeanon"
    instances=
    for link in "$ROOT$UNITS"/multi-user.target.wants/edgeanon@*.service; do
        [ -e "$link" ] || [ -L "$link" ] || continue
        instances="$instances $(basename "$link")"
    done
    if [ -z "$ROOT" ]; then
        # shellcheck disable=SC2086 # instances: unit names without spaces
        run systemctl stop edgeanon-engines.service edgeanon.service $instances 'edgeanon@*.service'
    fi
    # shellcheck disable=SC2086
    systemctl_files disable edgeanon-engines.service edgeanon.service $instances
    fs rm -f "$ROOT$UNITS/edgeanon@.service" "$ROOT$UNITS/edgeanon.service" "$ROOT$UNITS/edgeanon-engines.service"
    for dropin in "$ROOT$UNITS"/edgeanon@*.service.d; do
        [ -d "$dropin" ] || continue
        fs rm -f "$dropin/network.conf"
        if [ "$WRITE_FILES" = 1 ]; then
            rmdir "$dropin" 2>/dev/null || info "kept $dropin (it holds your own drop-ins)"
        fi
    done
    run systemctl daemon-reload
    fs rm -rf "$ROOT$PREFIX" "$ROOT$CACHE"
    if [ "$PURGE" = 1 ]; then
        fs rm -rf "$ROOT$CONF" "$ROOT$STATE"
        run userdel "$USER_NAME"
        run userdel "$MODELS_USER"
    else
        info "kept $CONF, $STATE and user $USER_NAME (use --purge to remove them)"
    fi
}

if [ "$UNINSTALL" = 1 ]; then
    uninstall_all
else
    install_all
fi
