#!/bin/sh
# Headless Chromium for the console's browser tests (tests/web/test_console_browser.py), driven by Python
# playwright with executable_path=/usr/bin/chromium: Debian's browser, no download. Idempotent; Debian; root.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6; do  # another setup script may hold the dpkg lock for a while
    if apt-get install -y --no-install-recommends chromium fonts-dejavu-core; then
        exit 0
    fi
    apt-get update -q || true
    sleep 10
done
exit 1
