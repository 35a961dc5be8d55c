"""Coalesced socket writes, for the plaintext and the TLS transport alike.

pika sends every frame with its own send() call, three per message; joining what is queued cuts
the emitter's system-call count by orders of magnitude. Both transports send through
``_AsyncTransportBase._produce`` (the TLS one via ``super()``), so that is where this hooks in.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from pika.adapters.utils import io_services_utils

COALESCE_BYTES = 256 * 1024
# Captured before any patch; getattr so that a changed pika fails the shape check, not the import.
_Base: Any = getattr(io_services_utils, "_AsyncTransportBase", None)
_original_produce = getattr(_Base, "_produce", None)


def coalesce(buffers: deque[bytes], limit: int = COALESCE_BYTES) -> None:
    """Join the leading queued chunks (up to ``limit`` bytes) into one, in order."""
    if len(buffers) < 2 or len(buffers[0]) >= limit:
        return
    parts = []
    size = 0
    while buffers and size < limit:
        part = buffers.popleft()
        parts.append(part)
        size += len(part)
    buffers.appendleft(b"".join(parts))


def _coalescing_produce(self: Any) -> None:
    coalesce(self._tx_buffers)
    _original_produce(self)  # type: ignore[misc]


def install() -> None:
    _Base._produce = _coalescing_produce
