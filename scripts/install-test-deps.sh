#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, when run as root on a
# machine that lacks them. As a normal user it only says what is missing:
# the tests that need those tools skip with a message.
set -euo pipefail
need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v bridge >/dev/null 2>&1 || need+=(iproute2)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
# trafgen floods the veth in bench/reallink (its smoke test runs in make test).
command -v trafgen >/dev/null 2>&1 || need+=(netsniff-ng)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: not root; missing ${need[*]} (tests that need them will skip)"
  exit 0
fi
echo "install-test-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
