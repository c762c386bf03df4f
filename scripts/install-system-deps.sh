#!/usr/bin/env bash
# Installs the Debian packages the test suite talks to, only when they are missing.
# Needs root (CI and the development machines run as root); prints what it does.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
  || missing+=(prometheus-alertmanager)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# --no-install-recommends keeps the install small; the packages' daemons are not started
# here, the tests start their own on loopback ports.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
