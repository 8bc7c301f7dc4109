"""Chunked streams: bound incoming chunks, cut outgoing blobs into chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sandbox.orchestrator.errors import InvalidArgument

SEND_CHUNK = 256 * 1024
MAX_CHUNK = 1024 * 1024


def bounded(chunks: Iterable[bytes], field: str = "data") -> Iterator[bytes]:
    for i, chunk in enumerate(chunks):
        if len(chunk) > MAX_CHUNK:
            raise InvalidArgument(f"chunk {i} {field}: {len(chunk)} bytes, at most {MAX_CHUNK} per chunk")
        yield chunk
