"""mitmproxy addon (loaded by mitmdump ``-s``): answer everything, record everything.

Every HTTP(S) request is answered in the ``request`` hook with a fixed
response, so mitmproxy never opens an upstream connection.  Each exchange
is written to ``flows.jsonl`` when the response goes out.  The device's
address and the catch-all's connection id arrive as headers on the tunnel's
CONNECT (which is never forwarded anywhere) and are remembered per client
connection, so every flow and TLS failure names the device socket it came
from.  A client that fails the TLS handshake (it rejected our certificate
with an alert, or closed the connection) shows up in ``tls_failures.jsonl``
with its SNI, the error and how long the handshake lasted.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from mitmproxy import connection, http, tls

from fakenetd.catchall import CLIENT_HEADER, CONN_HEADER
from fakenetd.config import Config
from fakenetd.jsonlog import JsonlWriter


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _headers(headers: Any) -> list[list[str]]:
    return [[str(k), str(v)] for k, v in headers.items(multi=True)]


def _decoded(message: http.Message) -> bytes | None:
    """The body with Content-Encoding undone, when there was one and it decodes."""
    if "content-encoding" not in message.headers:
        return None
    try:
        return message.get_content(strict=True)
    except ValueError:
        return None


class FakenetAddon:
    def __init__(self) -> None:
        self.cfg = Config.from_env()
        d = self.cfg.data_dir
        self.flows = JsonlWriter(d / "flows.jsonl")
        self.tls_failures = JsonlWriter(d / "tls_failures.jsonl")
        self.errors = JsonlWriter(d / "mitm_errors.jsonl")
        self.tunnels: dict[str, dict[str, str | None]] = {}

    def _tunnel(self, client: connection.Client) -> dict[str, str | None]:
        known = self.tunnels.get(client.id)
        if known is not None:
            return known
        peer = client.peername
        return {"client": f"{peer[0]}:{peer[1]}" if peer else None, "conn": None, "orig_dst": None}

    # -- hooks -----------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        h = flow.request.headers
        self.tunnels[flow.client_conn.id] = {
            "client": h.get(CLIENT_HEADER),
            "conn": h.get(CONN_HEADER),
            "orig_dst": f"{flow.request.host}:{flow.request.port}",
        }
        h.pop(CLIENT_HEADER, None)
        h.pop(CONN_HEADER, None)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is None:
            flow.response = http.Response.make(
                self.cfg.http_status,
                self.cfg.http_body.encode("utf-8"),
                {"Content-Type": self.cfg.http_content_type},
            )

    def response(self, flow: http.HTTPFlow) -> None:
        self.flows.write(self.flow_record(flow))

    def error(self, flow: http.HTTPFlow) -> None:
        record = self.flow_record(flow)
        record["error"] = flow.error.msg if flow.error else "unknown"
        self.errors.write(record)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        t = self._tunnel(data.context.client)
        now = time.time()
        began = data.context.client.timestamp_start
        self.tls_failures.write({
            "ts": now,
            "client": t["client"],
            "conn": t["conn"],
            "orig_dst": t["orig_dst"],
            "sni": data.conn.sni,
            "error": data.conn.error,
            # how long the client stayed in the handshake: a client that gives
            # up on a timeout and one that rejects the certificate look alike
            # but for this and the alert (which the error text carries)
            "handshake_ms": round((now - began) * 1000, 1) if began else None,
        })

    def client_disconnected(self, client: connection.Client) -> None:
        self.tunnels.pop(client.id, None)

    # -- records ---------------------------------------------------------------

    def flow_record(self, flow: http.HTTPFlow) -> dict[str, Any]:
        t = self._tunnel(flow.client_conn)
        req = flow.request
        resp = flow.response
        record: dict[str, Any] = {
            "id": flow.id,
            "ts_request": req.timestamp_start,
            "client": t["client"],
            "conn": t["conn"],
            "orig_dst": t["orig_dst"],
            "sni": flow.client_conn.sni,
            "tls": bool(flow.client_conn.tls_established),
            "tls_version": flow.client_conn.tls_version,
            "alpn": flow.client_conn.alpn.decode("ascii", "replace") if flow.client_conn.alpn else None,
            "scheme": req.scheme,
            "host": req.pretty_host,
            "port": req.port,
            "method": req.method,
            "path": req.path,
            "http_version": req.http_version,
            "request_headers": _headers(req.headers),
            "request_body_b64": _b64(req.raw_content),
            "request_body_decoded_b64": _b64(_decoded(req)),
            "response_status": resp.status_code if resp else None,
            "response_headers": _headers(resp.headers) if resp else None,
            "response_body_b64": _b64(resp.raw_content) if resp else None,
        }
        return record


addons = [FakenetAddon()]
