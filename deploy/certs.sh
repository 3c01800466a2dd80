#!/bin/sh
# A small private CA for a fleet: the broker's server certificate and one client certificate per camera.
# The certificate's CN is the camera id: the broker takes it as the user name (use_identity_as_username),
# and its ACL lets that user write only edgeanon/<camera id>/#. See deploy/FLEET.md.
set -eu

usage() {
    cat <<'EOF'
Usage: deploy/certs.sh [--dir DIR] [--days N] COMMAND ...

Commands:
  ca                      make DIR/ca.key and DIR/ca.crt (once; never overwritten)
  server NAME [NAME ...]  make DIR/server.key, DIR/server.crt for the broker; NAMEs are its DNS names
                          or IP addresses (the first is the CN; all go in subjectAltName)
  device ID [ID ...]      make DIR/ID.key, DIR/ID.crt for each camera id (CN=ID, client auth only)

Options:
  --dir DIR   where keys and certificates go (default: ./pki); ca.key must stay on this machine
  --days N    validity of server and device certificates in days (default: 825; the CA gets 3650)

Keys are ECDSA P-256. Example for one site:
  deploy/certs.sh ca
  deploy/certs.sh server broker.site1.example.net 10.0.0.2
  deploy/certs.sh device front-door loading-bay
  sudo deploy/install.sh --camera front-door --tls-dir ./pki     # on the camera
EOF
}

DIR=./pki
DAYS=825

die() { printf 'certs.sh: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dir) [ $# -ge 2 ] || die "--dir needs a directory"; DIR=$2; shift 2 ;;
        --days) [ $# -ge 2 ] || die "--days needs a number"; DAYS=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) break ;;
    esac
done
case "$DAYS" in ''|*[!0-9]*) die "--days '$DAYS': not a whole number" ;; esac
[ $# -ge 1 ] || { usage >&2; exit 2; }
command -v openssl >/dev/null 2>&1 || die "openssl not found (apt install openssl)"
COMMAND=$1
shift
mkdir -p "$DIR"
umask 077

new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

need_ca() {
    if [ ! -f "$DIR/ca.crt" ] || [ ! -f "$DIR/ca.key" ]; then
        die "no CA in $DIR: run '$0 --dir $DIR ca' first"
    fi
}

# Sign DIR/NAME.csr with the CA using the extensions in DIR/NAME.ext, then drop the CSR.
sign() {
    openssl x509 -req -in "$DIR/$1.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
        -days "$DAYS" -sha256 -extfile "$DIR/$1.ext" -out "$DIR/$1.crt" 2>/dev/null
    rm -f "$DIR/$1.csr" "$DIR/$1.ext"
    chmod 0644 "$DIR/$1.crt"
}

make_ca() {
    if [ -f "$DIR/ca.crt" ] || [ -f "$DIR/ca.key" ]; then
        die "$DIR already holds a CA (ca.crt/ca.key): refusing to replace it (every device trusts it)"
    fi
    new_key "$DIR/ca.key"
    openssl req -x509 -new -key "$DIR/ca.key" -sha256 -days 3650 -subj "/CN=edgeanon fleet CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$DIR/ca.crt"
    chmod 0644 "$DIR/ca.crt"
    echo "$DIR/ca.crt (give it to every device and the broker); keep $DIR/ca.key secret and offline"
}

make_server() {
    [ $# -ge 1 ] || die "server: give the broker's host name or IP address"
    need_ca
    san=
    for name in "$@"; do
        case "$name" in
            *[!0-9.]*) case "$name" in *:*) entry="IP:$name" ;; *) entry="DNS:$name" ;; esac ;;
            *) entry="IP:$name" ;;
        esac
        san="${san:+$san,}$entry"
    done
    new_key "$DIR/server.key"
    openssl req -new -key "$DIR/server.key" -subj "/CN=$1" -out "$DIR/server.csr"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
        "$san" > "$DIR/server.ext"
    sign server
    echo "$DIR/server.crt for $san"
}

make_device() {
    [ $# -ge 1 ] || die "device: give at least one camera id"
    need_ca
    for id in "$@"; do
        case "$id" in
            ''|*[!A-Za-z0-9_-]*) die "device '$id': use letters, digits, '-' and '_' only (it becomes an MQTT user and topic)" ;;
        esac
        new_key "$DIR/$id.key"
        openssl req -new -key "$DIR/$id.key" -subj "/CN=$id" -out "$DIR/$id.csr"
        printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' \
            > "$DIR/$id.ext"
        sign "$id"
        echo "$DIR/$id.crt + $DIR/$id.key (CN=$id)"
    done
}

case "$COMMAND" in
    ca) make_ca ;;
    server) make_server "$@" ;;
    device) make_device "$@" ;;
    *) die "unknown command '$COMMAND' (see --help)" ;;
esac
