#!/usr/bin/env bash
# CI: install Prometheus and promtool for tests/dashboards/, idempotently.
#
# The test starts its own prometheus binary with a temporary config, so the Debian service is stopped
# and disabled: it would otherwise hold port 9090 and scrape nothing of ours.
set -euo pipefail
if ! command -v prometheus >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
    service prometheus stop >/dev/null 2>&1 || true
fi
