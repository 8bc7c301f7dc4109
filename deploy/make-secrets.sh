#!/usr/bin/env bash
# Make the secrets a farm needs, with openssl only: a bearer token, a CA, an
# orchestrator certificate signed by it, and PostgreSQL's password
# (postgres-password, and db.env for Compose: POSTGRES_PASSWORD for the
# database's first start, PGPASSWORD for the orchestrators' client library).  The certificate names every
# address clients and workers use: localhost, 127.0.0.1, the Compose service
# names and the Kubernetes Service's names (extra names as arguments, e.g.
# DNS:farm.example.org IP:192.0.2.10).  Existing files are kept, so running it
# twice changes nothing; delete the directory to rotate.
#
#   deploy/make-secrets.sh [DIR] [SAN...]      (DIR default: deploy/secrets)
set -euo pipefail
dir="${1:-$(dirname "$0")/secrets}"
shift || true
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077
[ -s token ] || openssl rand -hex 32 > token
[ -s postgres-password ] || openssl rand -hex 24 > postgres-password
pw="$(cat postgres-password)"
printf 'POSTGRES_PASSWORD=%s\nPGPASSWORD=%s\n' "$pw" "$pw" > db.env
if [ ! -s ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -keyout ca.key -out ca.pem -days 825 \
    -subj "/CN=honeyphone farm CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
if [ ! -s server.pem ]; then
  sans="DNS:localhost,IP:127.0.0.1,DNS:orchestrator,DNS:orchestrator-1,DNS:orchestrator-2"
  sans+=",DNS:honeyphone-orchestrator,DNS:honeyphone-orchestrator.honeyphone.svc"
  sans+=",DNS:honeyphone-orchestrator.honeyphone.svc.cluster.local"
  for extra in "$@"; do sans+=",$extra"; done
  openssl req -newkey rsa:3072 -nodes -keyout server.key -out server.csr \
    -subj "/CN=honeyphone-orchestrator" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$sans" > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
    -days 825 -extfile server.ext 2>/dev/null
  rm -f server.csr server.ext ca.srl
fi
# Readable by the containers' unprivileged user (uid 10001 runs the orchestrator).
chmod 644 token ca.pem server.pem server.key postgres-password db.env
chmod 600 ca.key
echo "secrets in $(pwd): token ca.pem server.pem server.key postgres-password db.env (ca.key stays here)"
