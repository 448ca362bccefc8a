#!/usr/bin/env bash
# Installs the real test peers from Debian packages (DESIGN §5): openssl (chains, CRL, OCSP, PKCS#12),
# nginx (deploy + reload), pebble (ACME), wireguard-tools (wg) and wireguard-go. Skips what is already there.
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v nginx >/dev/null || need+=(nginx-light)
command -v pebble >/dev/null || need+=(pebble)
command -v wg >/dev/null || need+=(wireguard-tools)
command -v wireguard-go >/dev/null || need+=(wireguard-go) # userspace WireGuard: tunnel tests in unshare -n
command -v ip >/dev/null || need+=(iproute2) # network namespaces for the WireGuard tunnel test
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  [ "${CI:-}" = "true" ] && exit 1 || exit 0
fi
echo "install-peers: apt-get install ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# nginx-light's postinst may start a system nginx on :80; tests run their own on free ports.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then systemctl stop nginx || true; fi
pkill -x nginx 2>/dev/null || true
