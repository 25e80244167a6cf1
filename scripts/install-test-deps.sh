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
# FRRouting's zebra and pimd are the IGMPv3 querier/router in
# cmd/mcast's emulate_frr_test.go. The tests run the daemons by hand in
# their own namespaces; the package's frr service must never run, so the
# install below is done with a policy-rc.d that forbids starting services.
want_frr=0
[ -x /usr/lib/frr/pimd ] && [ -x /usr/lib/frr/zebra ] && command -v vtysh >/dev/null 2>&1 || want_frr=1
# promtool (internal/admin checks the metrics text with `promtool check
# metrics`) comes from Debian's prometheus package. That package is the
# whole server (about 95 MB with its web assets) and ships a service that
# postinst enables and starts on :9090 under systemd, so the package is not
# installed: only its promtool binary is extracted to /usr/local/bin.
want_promtool=0
command -v promtool >/dev/null 2>&1 || want_promtool=1
[ ${#need[@]} -eq 0 ] && [ $want_promtool -eq 0 ] && [ $want_frr -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  missing="${need[*]}"
  [ $want_promtool -eq 1 ] && missing="$missing promtool(prometheus)"
  [ $want_frr -eq 1 ] && missing="$missing frr"
  echo "install-test-deps: not root; missing ${missing# } (tests that need them will skip)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ $want_frr -eq 1 ]; then
  echo "install-test-deps: installing frr (service not started, not enabled)"
  # invoke-rc.d asks /usr/sbin/policy-rc.d; exit 101 = action forbidden.
  # Put one in place only for this install if the machine has none.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  rc=0
  apt-get install -y -qq --no-install-recommends frr >/dev/null || rc=$?
  [ $own_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || exit $rc
  # Not at boot either (disable works without a running systemd).
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable frr.service >/dev/null 2>&1 || true
  fi
  # Belt and braces: if a daemon of the default instance runs anyway
  # (its pid files are in /run/frr), stop it by its pid.
  for f in /run/frr/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
fi
if [ $want_promtool -eq 1 ]; then
  echo "install-test-deps: extracting promtool from the prometheus package"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root prometheus >/dev/null)
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
  install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
fi
