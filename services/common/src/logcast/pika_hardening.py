"""Adjustments to pika internals: tolerant header decoding and larger socket reads.

pika turns a field-table timestamp into a datetime; one past year 9999 raises inside frame
decoding, which drops the whole connection (and with it an exclusive queue's messages).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import pika.data
from pika.adapters.utils import io_services_utils

_original_decode_value = pika.data.decode_value
_TIMESTAMP = b"T"


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


def install() -> None:
    """Idempotent; called before the first connection, never at import."""
    # pika reads 4 KiB per recv(); larger reads let a receiver take a whole burst per loop turn.
    io_services_utils._AsyncPlaintextTransport._MAX_RECV_BYTES = 256 * 1024
    # decode_table and nested arrays look the name up at call time, so they use this one too.
    pika.data.decode_value = tolerant_decode_value
