#!/bin/sh
# Start `honeyphone worker` with the iptables back end the host's Docker uses.
# The worker shares the host's network namespace, so its rules land in the
# host's tables; nft and legacy rules live apart, and rules added through the
# wrong back end would sit beside Docker's chains without taking effect in the
# order Docker expects.  Docker's DOCKER-USER chain shows which one is in use.
set -eu
if ! iptables-nft -S DOCKER-USER >/dev/null 2>&1 && iptables-legacy -S DOCKER-USER >/dev/null 2>&1; then
  update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy
  update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-legacy
fi
# tini -s: with the host's PID namespace tini is not PID 1, and adb's
# daemonized server must be reaped by us, not by the host's init.
exec tini -s -- honeyphone worker "$@"
