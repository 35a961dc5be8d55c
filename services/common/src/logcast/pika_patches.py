"""Adjustments to pika internals, installed before the first connection (never at import).

- Header decoding that tolerates any timestamp: pika turns a field-table timestamp into a
  datetime, and one past year 9999 raises inside frame decoding, which drops the whole
  connection (and with it an exclusive queue's messages).
- Coalesced socket writes: pika sends every frame with its own send() call, three per message;
  joining what is queued cuts the emitter's system-call count by orders of magnitude.
"""

from __future__ import annotations

import struct
from collections import deque
from datetime import UTC, datetime
from typing import Any

import pika.data
from pika.adapters.utils import io_services_utils

_original_decode_value = pika.data.decode_value
_Transport = io_services_utils._AsyncPlaintextTransport
_original_produce = _Transport._produce
_TIMESTAMP = b"T"
_COALESCE_BYTES = 256 * 1024


def tolerant_decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    if encoded[offset : offset + 1] != _TIMESTAMP:
        decoded: tuple[Any, int] = _original_decode_value(encoded, offset)
        return decoded
    (seconds,) = struct.unpack_from(">Q", encoded, offset + 1)
    try:
        value: Any = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        value = seconds  # keep the raw number rather than fail the connection
    return value, offset + 9


def coalesce(buffers: deque[bytes], limit: int = _COALESCE_BYTES) -> None:
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
    _original_produce(self)


def install() -> None:
    """Idempotent."""
    # decode_table and nested arrays look the name up at call time, so they use this one too.
    pika.data.decode_value = tolerant_decode_value
    _Transport._produce = _coalescing_produce
