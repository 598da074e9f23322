#!/usr/bin/env bash
# CI: install snmpsim for the SNMP integration tests (tests/controller/snmp/), idempotently.
#
# snmpsim must drop privileges to nobody when started as root, and nobody must still be able to read
# its Python, so it gets its own venv from Debian's interpreter (not one under root's home).
# snmpsim imports pysmi without declaring it, and its SNMPv3 privacy (AES, DES) needs cryptography, which
# it does not declare either.
set -euo pipefail
PREFIX=${SNMPSIM_PREFIX:-/opt/snmpsim}
if [ -x "$PREFIX/bin/snmpsim-command-responder" ] && "$PREFIX/bin/python" -c "import snmpsim, pysmi, cryptography" 2>/dev/null; then
    exit 0
fi
if ! /usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
fi
/usr/bin/python3 -m venv "$PREFIX"
"$PREFIX/bin/pip" install -q --disable-pip-version-check snmpsim pysmi cryptography
chmod -R a+rX "$PREFIX"
