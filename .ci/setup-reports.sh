#!/usr/bin/env bash
# CI: what the reports need from Debian, idempotently.
#
# WeasyPrint (the report PDFs) loads Pango through cffi at run time, and harfbuzz-subset to embed font
# subsets; the HTML names DejaVu Sans, so the PDF's text is the same on every machine. matplotlib and
# pypdf are wheels and need nothing here.
set -euo pipefail
PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core)
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
