#!/usr/bin/env bash
# CI: HAProxy (Debian's package) for the replica tests, which run it in the foreground on loopback in
# front of real `caretaker serve` processes. The packaged service is left stopped: tests start their own.
set -euo pipefail
if ! command -v haproxy >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends haproxy >/dev/null
  systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
echo "HAProxy for CI: $(haproxy -v | head -n 1)"
