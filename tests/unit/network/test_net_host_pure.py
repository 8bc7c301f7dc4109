"""Pure logic of the host side of network containment (no Docker, no root).

Firewall rule building, ``iptables -S`` parsing, install/remove against an
in-memory iptables (order, idempotence, leaving other analyses' and foreign
rules alone), log parsing, tcpdump argv/summary parsing and route
argument validation.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox.network import containment
from sandbox.network.archive import _safe_relpath
from sandbox.network.capture import parse_counts, tcpdump_argv
from sandbox.network.iptables import ListedRule, parse_listing
from sandbox.network.logs import FakenetLogs, HttpFlow, split_hostport
from sandbox.network.routing import default_route_argv

# -- rules ---------------------------------------------------------------------------------


def test_every_rule_carries_the_analysis_comment() -> None:
    rules = containment.input_rules("abc123", "hpabc123") + containment.forward_rules("abc123", "hpabc123")
    for spec in rules:
        i = spec.index("--comment")
        assert spec[i - 2:i + 2] == ("-m", "comment", "--comment", "honeyphone:abc123")


def test_input_rules_accept_only_replies_then_drop() -> None:
    first, second = containment.input_rules("a1", "hpa1")
    assert first[:2] == ("-i", "hpa1") and "RELATED,ESTABLISHED" in first and first[-1] == "ACCEPT"
    assert second[:2] == ("-i", "hpa1") and second[-1] == "DROP" and "conntrack" not in second


def test_forward_rules_keep_traffic_on_the_bridge() -> None:
    accept, drop_out, drop_in = containment.forward_rules("a1", "hpa1")
    assert accept[:4] == ("-i", "hpa1", "-o", "hpa1") and accept[-1] == "ACCEPT"
    assert drop_out[:2] == ("-i", "hpa1") and "-o" not in drop_out and drop_out[-1] == "DROP"
    assert drop_in[:2] == ("-o", "hpa1") and "-i" not in drop_in and drop_in[-1] == "DROP"


@pytest.mark.parametrize("bad", ["", "a b", "x;rm", "-j", "a" * 65, "../x"])
def test_bad_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        containment.comment_for(bad)


def test_bad_bridge_names_are_refused() -> None:
    with pytest.raises(ValueError):
        containment.input_rules("a1", "x" * 16)
    with pytest.raises(ValueError):
        containment.forward_rules("a1", "-j")


LISTING = """-P INPUT ACCEPT
-N DOCKER-USER
-A INPUT -i hpa1 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "honeyphone:a1" -j ACCEPT
-A INPUT -i hpa1 -m comment --comment honeyphone:a1 -j DROP
-A INPUT -i eth0 -m comment --comment "operator rule with spaces" -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
"""


def test_parse_listing() -> None:
    rules = parse_listing(LISTING)
    assert [r.chain for r in rules] == ["INPUT"] * 4
    assert rules[0].spec[-2:] == ("-j", "ACCEPT")
    assert [r.comment for r in rules] == ["honeyphone:a1", "honeyphone:a1", "operator rule with spaces", None]


def test_matches() -> None:
    rules = parse_listing(LISTING)
    assert [containment.matches(r, "a1") for r in rules] == [True, True, False, False]
    assert [containment.matches(r, None) for r in rules] == [True, True, False, False]
    assert not containment.matches(rules[0], "a")  # no prefix matching between ids


@dataclass
class FakeIptables:
    """In-memory filter table with iptables' -C/-I/-D/-S semantics."""

    chains: dict[str, list[tuple[str, ...]]] = field(
        default_factory=lambda: {"INPUT": [], "FORWARD": [], "DOCKER-USER": [("-j", "RETURN")]}
    )

    def chain_exists(self, chain: str) -> bool:
        return chain in self.chains

    def list_chain(self, chain: str) -> list[ListedRule]:
        return [ListedRule(chain, spec) for spec in self.chains.get(chain, [])]

    def exists(self, chain: str, spec: tuple[str, ...]) -> bool:
        return spec in self.chains.get(chain, [])

    def insert(self, chain: str, spec: tuple[str, ...], position: int = 1) -> None:
        self.chains[chain].insert(position - 1, spec)

    def delete(self, chain: str, spec: tuple[str, ...]) -> bool:
        if spec in self.chains[chain]:
            self.chains[chain].remove(spec)
            return True
        return False


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeIptables:
    ipt = FakeIptables()
    monkeypatch.setattr(containment, "_families", lambda: [("ipv4", ipt)])
    return ipt


def test_install_puts_rules_on_top_in_order(fake: FakeIptables) -> None:
    fake.chains["INPUT"].append(("-p", "tcp", "--dport", "22", "-j", "ACCEPT"))
    installed = containment.install_rules("a1", "hpa1")
    assert fake.chains["INPUT"][:2] == containment.input_rules("a1", "hpa1")
    assert fake.chains["DOCKER-USER"][:3] == containment.forward_rules("a1", "hpa1")
    assert fake.chains["DOCKER-USER"][-1] == ("-j", "RETURN")
    assert fake.chains["FORWARD"] == []
    assert len(installed) == 5


def test_install_is_idempotent_and_repairs_partial_sets(fake: FakeIptables) -> None:
    containment.install_rules("a1", "hpa1")
    snapshot = {k: list(v) for k, v in fake.chains.items()}
    containment.install_rules("a1", "hpa1")
    assert fake.chains == snapshot
    fake.chains["DOCKER-USER"].remove(containment.forward_rules("a1", "hpa1")[0])  # the ACCEPT vanished
    containment.install_rules("a1", "hpa1")
    assert fake.chains == snapshot


def test_forward_chain_without_docker(fake: FakeIptables) -> None:
    del fake.chains["DOCKER-USER"]
    containment.install_rules("a1", "hpa1")
    assert fake.chains["FORWARD"] == containment.forward_rules("a1", "hpa1")


def test_remove_only_touches_the_named_analysis(fake: FakeIptables) -> None:
    containment.install_rules("a1", "hpa1")
    containment.install_rules("b2", "hpb2")
    fake.chains["INPUT"].append(("-i", "eth0", "-m", "comment", "--comment", "other", "-j", "ACCEPT"))
    removed = containment.remove_rules("a1")
    assert len(removed) == 5 and all(r.startswith("ipv4 ") for r in removed)
    assert containment.list_rules("a1") == []
    assert len(containment.list_rules("b2")) == 5
    assert containment.remove_rules("a1") == []  # idempotent
    assert len(containment.remove_rules(None)) == 5  # every analysis
    assert fake.chains["INPUT"] == [("-i", "eth0", "-m", "comment", "--comment", "other", "-j", "ACCEPT")]


# -- logs --------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_logs_parse_and_skip_torn_lines(tmp_path: Path) -> None:
    logs = FakenetLogs(tmp_path)
    flow = {
        "id": "f1", "ts_request": 1.5, "client": "10.0.0.3:4000", "conn": "c1", "orig_dst": "203.0.113.9:443",
        "sni": "api.example", "tls": True, "scheme": "https", "host": "api.example", "port": 443,
        "method": "POST", "path": "/up", "http_version": "HTTP/2.0",
        "request_headers": [["Content-Encoding", "gzip"], ["X-A", "1"]],
        "request_body_b64": b64(b"\x1f\x8b..."), "request_body_decoded_b64": b64(b"secret"),
        "response_status": 200, "response_headers": [["Content-Type", "application/json"]],
        "response_body_b64": b64(b"{}"),
    }
    (tmp_path / "flows.jsonl").write_text(json.dumps(flow) + "\n" + '{"id": "torn", "ts_req')
    (tmp_path / "dns.jsonl").write_text(json.dumps({"ts": 1.0, "client": "c", "name": "x.example", "type": "TXT"}) + "\n")
    (tmp_path / "udp.jsonl").write_text(json.dumps(
        {"ts": 1.0, "client": "c:1", "orig_dst": None, "bytes": 3, "sha256": "s", "head_b64": b64(b"abc")}) + "\n")
    (tmp_path / "tcp.jsonl").write_text(json.dumps({"ts": 1.0, "id": "x"}) + "\n")  # missing fields: skipped
    (f,) = logs.http_flows()
    assert isinstance(f, HttpFlow) and f.body == b"secret" and f.request_body.startswith(b"\x1f\x8b")
    assert f.header("x-a") == "1" and f.header("missing") is None
    assert logs.dns_queries()[0].type == "TXT" and logs.dns_queries()[0].proto == "udp"
    assert logs.udp_datagrams()[0].head == b"abc" and logs.udp_datagrams()[0].orig_dst is None
    assert logs.tcp_streams() == [] and logs.tls_failure_records() == []


def test_split_hostport() -> None:
    assert split_hostport("10.0.0.3:4711") == ("10.0.0.3", 4711)
    assert split_hostport("nope") is None and split_hostport(None) is None


# -- capture, trust, routing, archive ------------------------------------------------------


def test_tcpdump_argv_and_counts() -> None:
    argv = tcpdump_argv("/usr/bin/tcpdump", "hpa1", Path("/x/a.pcap"))
    assert argv[:3] == ["/usr/bin/tcpdump", "-i", "hpa1"]
    assert "-U" in argv and "--immediate-mode" in argv and argv[argv.index("-w") + 1] == "/x/a.pcap"
    assert int(argv[argv.index("-B") + 1]) >= 16 * 1024  # KiB: bursts on a loaded host must not overflow it
    summary = "177 packets captured\n180 packets received by filter\n3 packets dropped by kernel\n"
    assert parse_counts(summary) == (177, 3)
    assert parse_counts("tcpdump: error") == (None, None)


def test_default_route_argv() -> None:
    assert default_route_argv("10.213.0.2") == ["route", "replace", "default", "via", "10.213.0.2"]
    with pytest.raises(ValueError):
        default_route_argv("10.213.0.2 dev lo")


def test_archive_paths() -> None:
    assert _safe_relpath("fakenet/dns.jsonl") is not None
    for bad in ("/etc/passwd", "fakenet/../../x", "../x"):
        assert _safe_relpath(bad) is None


def test_pool_is_unreachable_off_host() -> None:
    """Host packets to a pool address with no bridge must not follow the default route."""
    import subprocess

    from sandbox.network.containment import ensure_pool_unreachable
    from sandbox.settings import Settings

    pool = Settings().subnet_pool
    ensure_pool_unreachable(pool)
    assert ensure_pool_unreachable(pool) is False  # idempotent
    first = pool.split("/")[0].rsplit(".", 2)[0] + ".255.250"  # inside the pool, no bridge of ours there
    route = subprocess.run(["ip", "route", "get", first], capture_output=True, text=True)
    assert route.returncode != 0 or "unreachable" in route.stdout + route.stderr
