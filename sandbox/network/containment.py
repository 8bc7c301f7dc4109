"""Host firewall rules that fence one analysis' bridge off from everything but itself.

Docker's ``--internal`` network gives the device no route off the host, but
the host itself still answers on the bridge's ``.1`` (and its IPv6
link-local) address, so a device could reach host services.  Per analysis we
add, for IPv4 and (when the host has IPv6) IPv6:

* ``INPUT``: from the bridge accept only ESTABLISHED/RELATED (replies to the
  host's own ``adb connect``), drop everything else: the device can open
  nothing on the host, whatever host address it aims at;
* ``DOCKER-USER`` (``FORWARD`` without Docker): accept bridge-to-same-bridge
  (device <-> fakenet; with br_netfilter these bridged frames traverse
  FORWARD and Docker's isolation rules would otherwise drop the device's
  packets to foreign addresses before they reach the fakenet), drop
  anything from the bridge to any other interface and anything from any
  other interface into the bridge (another analysis' device included).

Every rule carries ``-m comment --comment honeyphone:<analysis_id>`` and is
found again by that comment alone, so removal works after a crash and is a
cleanup hook for ``sandbox.containers.cleanup``.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import EnvironmentProblem
from .iptables import Iptables, ListedRule

COMMENT_PREFIX = "honeyphone:"
FORWARD_CHAINS = ("DOCKER-USER", "FORWARD")
SCANNED_CHAINS = ("INPUT", "FORWARD", "DOCKER-USER")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_IFACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")

Spec = tuple[str, ...]


@dataclass(frozen=True)
class FirewallRule:
    family: str  # "ipv4" or "ipv6"
    chain: str
    spec: Spec

    def describe(self) -> str:
        return f"{self.family} {self.chain} {shlex.join(self.spec)}"


def comment_for(analysis_id: str) -> str:
    if not _ID_RE.match(analysis_id):
        raise ValueError(f"analysis id {analysis_id!r} is not usable in a firewall comment")
    return COMMENT_PREFIX + analysis_id


def _check_iface(bridge: str) -> None:
    if not _IFACE_RE.match(bridge):
        raise ValueError(f"{bridge!r} is not a valid interface name")


def input_rules(analysis_id: str, bridge: str) -> list[Spec]:
    """INPUT rules, topmost first."""
    _check_iface(bridge)
    c = ("-m", "comment", "--comment", comment_for(analysis_id))
    return [
        ("-i", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *c, "-j", "ACCEPT"),
        ("-i", bridge, *c, "-j", "DROP"),
    ]


def forward_rules(analysis_id: str, bridge: str) -> list[Spec]:
    """DOCKER-USER/FORWARD rules, topmost first."""
    _check_iface(bridge)
    c = ("-m", "comment", "--comment", comment_for(analysis_id))
    return [
        ("-i", bridge, "-o", bridge, *c, "-j", "ACCEPT"),
        ("-i", bridge, *c, "-j", "DROP"),
        ("-o", bridge, *c, "-j", "DROP"),
    ]


def matches(rule: ListedRule, analysis_id: str | None) -> bool:
    """True for a rule of ``analysis_id`` (of any analysis when None)."""
    comment = rule.comment
    if comment is None:
        return False
    if analysis_id is None:
        return comment.startswith(COMMENT_PREFIX)
    return comment == COMMENT_PREFIX + analysis_id


def _host_has_ipv6() -> bool:
    return Path("/proc/net/if_inet6").exists()


def _families() -> list[tuple[str, Iptables]]:
    """The iptables binaries to use; IPv6 is required whenever the host runs IPv6."""
    v4 = Iptables("iptables")
    v4.check_usable()
    families = [("ipv4", v4)]
    v6 = Iptables("ip6tables")
    if v6.usable():
        families.append(("ipv6", v6))
    elif _host_has_ipv6():
        raise EnvironmentProblem(
            "the host runs IPv6 but ip6tables is unusable: a device could reach the host's link-local address",
            fix="apt-get install -y iptables (it ships ip6tables), or disable IPv6 on the host",
        )
    return families


def _forward_chain(ipt: Iptables) -> str:
    return "DOCKER-USER" if ipt.chain_exists("DOCKER-USER") else "FORWARD"


def _ensure(ipt: Iptables, chain: str, specs: list[Spec], comment: str) -> None:
    """Make ``specs`` the analysis' rules at the top of ``chain``, in order."""
    if all(ipt.exists(chain, s) for s in specs):
        return
    for rule in ipt.list_chain(chain):
        if rule.comment == comment:
            ipt.delete(chain, rule.spec)
    for spec in reversed(specs):
        ipt.insert(chain, spec, 1)


def install_rules(analysis_id: str, bridge: str) -> tuple[FirewallRule, ...]:
    """Fence ``bridge`` off; idempotent.  Call before any container starts on it."""
    comment = comment_for(analysis_id)
    installed: list[FirewallRule] = []
    for family, ipt in _families():
        for chain, specs in (
            ("INPUT", input_rules(analysis_id, bridge)),
            (_forward_chain(ipt), forward_rules(analysis_id, bridge)),
        ):
            _ensure(ipt, chain, specs, comment)
            installed.extend(FirewallRule(family, chain, s) for s in specs)
    return tuple(installed)


def list_rules(analysis_id: str | None) -> list[FirewallRule]:
    """The rules present now for ``analysis_id`` (every analysis when None)."""
    found: list[FirewallRule] = []
    for family, ipt in _families():
        for chain in SCANNED_CHAINS:
            found.extend(FirewallRule(family, r.chain, r.spec) for r in ipt.list_chain(chain) if matches(r, analysis_id))
    return found


def remove_rules(analysis_id: str | None) -> list[str]:
    """Remove the rules of ``analysis_id`` (of every analysis when None); idempotent.

    Matches the ``ExtraCleanup`` hook signature of ``sandbox.containers.cleanup``.
    """
    removed: list[str] = []
    for family, ipt in _families():
        for chain in SCANNED_CHAINS:
            for rule in ipt.list_chain(chain):
                if matches(rule, analysis_id) and ipt.delete(chain, rule.spec):
                    removed.append(FirewallRule(family, chain, rule.spec).describe())
    return removed


def ensure_pool_unreachable(pool: str) -> bool:
    """Make the device subnet pool unreachable off-host.

    Each analysis bridge adds a more specific route for its own subnet, so
    devices stay reachable from the host.  Without this, packets the host
    sends to a pool address whose bridge is gone (an adb server reconnecting
    to a removed device, say) follow the default route off the machine.
    Returns True when the route was added now.
    """
    ip = shutil.which("ip")
    if ip is None:
        raise EnvironmentProblem("the ip command (iproute2) is not installed", fix="apt-get install -y iproute2")
    net = str(ipaddress.ip_network(pool))
    shown = subprocess.run([ip, "route", "show", "type", "unreachable", net], capture_output=True, text=True)
    if net in shown.stdout:
        return False
    added = subprocess.run([ip, "route", "add", "unreachable", net], capture_output=True, text=True)
    if added.returncode != 0 and "File exists" not in added.stderr:
        raise EnvironmentProblem(f"cannot add an unreachable route for {net}: {added.stderr.strip()}",
                                 fix="run Honeyphone as root (it manages host routes and firewall rules)")
    return added.returncode == 0
