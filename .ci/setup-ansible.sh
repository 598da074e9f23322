#!/usr/bin/env bash
# CI: what tests/ansible needs. OpenSSH server and sudo (the role runs against this machine over SSH
# as a test user), python3-venv (the role makes the agent's venv from the target's python3), systemd
# (for `systemd-analyze verify`), and Ansible in a venv of its own.
#
# Ansible lives in /opt/caretaker-ci/ansible-venv, not .venv: ansible-lint brings black, jsonschema
# and their pins, ansible-core its own jinja2/cryptography pins, and none of that belongs in the
# project's test environment. The `ansible` package (rather than ansible-core alone) is installed
# because it carries the ansible.windows and community.general collections the roles use, and Galaxy
# is not always reachable from CI. A second run with nothing to do takes well under a second.
set -euo pipefail
ANSIBLE_VENV=${CARETAKER_ANSIBLE_VENV:-/opt/caretaker-ci/ansible-venv}
REQUIREMENTS="ansible==12.3.0 ansible-lint==26.10.1"
PACKAGES="openssh-server sudo python3-venv systemd"

missing=""
for package in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086  # one word per package
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

stamp="$ANSIBLE_VENV/.caretaker-requirements"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$REQUIREMENTS" ]; then
  [ -x "$ANSIBLE_VENV/bin/python" ] || /usr/bin/python3 -m venv "$ANSIBLE_VENV"
  # shellcheck disable=SC2086  # one word per requirement
  "$ANSIBLE_VENV/bin/python" -m pip install -q $REQUIREMENTS
  echo "$REQUIREMENTS" >"$stamp"
fi
echo "Ansible for CI: $("$ANSIBLE_VENV/bin/ansible-playbook" --version | head -n 1) in $ANSIBLE_VENV"
