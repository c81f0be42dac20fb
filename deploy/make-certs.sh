#!/bin/sh
# Makes a cluster CA and one certificate per node for jobd's mutual TLS
# between nodes (--tls-cert, --tls-key, --tls-ca).
#
#   deploy/make-certs.sh DIR NAME...
#
# writes DIR/ca.pem, DIR/ca-key.pem, and DIR/NAME.pem + DIR/NAME-key.pem for
# each NAME. Each node certificate is valid for the DNS name NAME,
# localhost and 127.0.0.1, plus anything in JOBD_CERT_SANS (openssl
# subjectAltName syntax, e.g. "DNS:jobd-0.jobd,IP:10.0.0.5"): it must name
# the host peers dial, as written in their --peers. Each is usable both as a
# server and as a client certificate, because a node is both.
# Keep ca-key.pem offline; nodes need only ca.pem and their own pair.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 DIR NAME..." >&2; exit 2; }
dir=$1; shift
days=${JOBD_CERT_DAYS:-825}
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -days "$days" \
        -subj "/CN=jobd cluster CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
for name in "$@"; do
    case $name in */*|"") echo "$0: bad node name '$name'" >&2; exit 2 ;; esac
    sans="DNS:$name,DNS:localhost,IP:127.0.0.1${JOBD_CERT_SANS:+,$JOBD_CERT_SANS}"
    ext=$(mktemp)
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth,clientAuth" \
        "subjectAltName=$sans" > "$ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/$name-key.pem" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
        -CAcreateserial -out "$dir/$name.pem" -days "$days" -extfile "$ext" 2>/dev/null
    rm -f "$ext" "$dir/$name.csr"
    echo "$dir/$name.pem"
done
