#!/usr/bin/env bash
# CI: what the session helper's tests need from Debian, idempotently.
#
# The helper runs as plain local users with the system's own Python (stdlib only, as on a school PC),
# and draws its warning window with tkinter (python3-tk); its idle time comes from a real X server
# (xvfb, installed by .ci/run), and who is signed in from a utmp read back with `who` (coreutils). The
# Ansible role's autostart entry is checked with desktop-file-validate (desktop-file-utils).
set -euo pipefail
PACKAGES=(python3 python3-tk desktop-file-utils)
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
