"""Running iptables/ip6tables and reading their rules back.

Rules are found again only by their comment, so nothing else on the host
(Docker's own chains, an operator's rules) is ever touched.  ``-w`` waits for
the xtables lock, which parallel analyses and tests contend for.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import EnvironmentProblem


@dataclass(frozen=True)
class ListedRule:
    """One ``-A CHAIN ...`` line of ``iptables -S``."""

    chain: str
    spec: tuple[str, ...]  # everything after the chain name

    @property
    def comment(self) -> str | None:
        for i, tok in enumerate(self.spec[:-1]):
            if tok == "--comment":
                return self.spec[i + 1]
        return None


def parse_listing(text: str) -> list[ListedRule]:
    """Parse ``iptables -S`` output; policy and chain lines are skipped."""
    rules: list[ListedRule] = []
    for line in text.splitlines():
        try:
            tokens = shlex.split(line)
        except ValueError:
            continue
        if len(tokens) >= 2 and tokens[0] == "-A":
            rules.append(ListedRule(tokens[1], tuple(tokens[2:])))
    return rules


class IptablesError(EnvironmentProblem):
    """An iptables command failed in a way that is not "rule already gone"."""


@dataclass(frozen=True)
class Iptables:
    """One binary (``iptables`` or ``ip6tables``), always on the filter table."""

    binary: str = "iptables"

    def path(self) -> str | None:
        return shutil.which(self.binary)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        path = self.path()
        if path is None:
            raise EnvironmentProblem(
                f"{self.binary} is not installed; Honeyphone cannot fence the analysis network off",
                fix="apt-get install -y iptables",
            )
        try:
            return subprocess.run([path, "-w", "10", *args], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise IptablesError(f"{self.binary} {' '.join(args)} failed: {exc}") from exc

    def check_usable(self) -> None:
        proc = self.run("-S", "INPUT")
        if proc.returncode != 0:
            raise EnvironmentProblem(
                f"{self.binary} cannot read the filter table: {proc.stderr.strip()}",
                fix="run Honeyphone as root on a kernel with netfilter (iptables -S must work)",
            )

    def usable(self) -> bool:
        if self.path() is None:
            return False
        return self.run("-S", "INPUT").returncode == 0

    def chain_exists(self, chain: str) -> bool:
        return self.run("-S", chain).returncode == 0

    def list_chain(self, chain: str) -> list[ListedRule]:
        proc = self.run("-S", chain)
        if proc.returncode != 0:
            return []
        return parse_listing(proc.stdout)

    def exists(self, chain: str, spec: tuple[str, ...]) -> bool:
        return self.run("-C", chain, *spec).returncode == 0

    def insert(self, chain: str, spec: tuple[str, ...], position: int = 1) -> None:
        proc = self.run("-I", chain, str(position), *spec)
        if proc.returncode != 0:
            raise IptablesError(f"{self.binary} -I {chain} {shlex.join(spec)} failed: {proc.stderr.strip()}")

    def delete(self, chain: str, spec: tuple[str, ...]) -> bool:
        """Delete one rule; False when it was already gone (a racing cleanup)."""
        proc = self.run("-D", chain, *spec)
        if proc.returncode == 0:
            return True
        if self.exists(chain, spec):
            raise IptablesError(f"{self.binary} -D {chain} {shlex.join(spec)} failed: {proc.stderr.strip()}")
        return False
