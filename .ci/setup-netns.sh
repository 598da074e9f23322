#!/usr/bin/env bash
# CI: what tests/test_wake_across_subnets.py needs: iproute2 (`ip netns`, veth, bridges) and the right to
# create network namespaces (root). The test builds its routed subnets itself and removes them; this only
# installs the tool and fails here, with the reason, if a namespace cannot be made, because CI must run
# that test rather than skip it. Idempotent.
set -euo pipefail
if ! dpkg-query -W -f='${Status}' iproute2 2>/dev/null | grep -q "ok installed"; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2
fi
probe="ci-probe-$$"
ip netns add "$probe" || { echo "CI: cannot create a network namespace (needs root)" >&2; exit 1; }
ip netns del "$probe"
