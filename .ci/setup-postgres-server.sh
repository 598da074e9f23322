#!/usr/bin/env bash
# The fault test (tests/test_fault_tolerance.py) stops a PostgreSQL of its own, made with initdb and pg_ctl
# in a temporary directory: it needs the server binaries, never the shared server's data.
set -euo pipefail
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  apt-get install -y -qq postgresql >/dev/null
fi
