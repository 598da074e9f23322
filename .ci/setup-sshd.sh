#!/usr/bin/env bash
# CI: what tests/controller/power/test_ssh.py needs: the OpenSSH server (sshd) and ssh-keygen. The tests
# start their own `sshd -D -f <temporary config>` on a free loopback port with a temporary host key;
# no system service is enabled or started. /run/sshd is the privilege-separation directory sshd
# refuses to start without when run as root (the Debian service normally creates it).
# Idempotent: a second run with nothing to do takes well under a second.
set -euo pipefail
PACKAGES="openssh-server openssh-client"

missing=""
for package in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
install -d -m 0755 /run/sshd
