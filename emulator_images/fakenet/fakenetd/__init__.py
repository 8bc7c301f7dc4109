"""fakenetd: the fake internet a Honeyphone device is allowed to talk to.

It runs as PID 1 of the per-analysis fakenet container.  Every name
resolves to it, every TCP port and UDP datagram arriving from the device is
redirected to it by iptables inside its own network namespace, TLS and HTTP
are decrypted by mitmproxy, and everything is written as JSON lines under
``/data/fakenet`` for the host to fetch at teardown.  Nothing is ever
forwarded: the fakenet answers everything itself.

Only the standard library, dnslib and mitmproxy (Debian packages) are used,
because pip cannot reach PyPI from inside containers on our hosts.
"""
