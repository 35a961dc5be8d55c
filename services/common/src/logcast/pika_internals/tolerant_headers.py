"""Header decoding that survives any timestamp a publisher may send.

pika turns a field-table timestamp into a datetime, and one past year 9999 raises inside frame
decoding, which drops the whole connection (and with it an exclusive queue's messages). This keeps
such a value as the raw number of seconds instead; ``decode_delivery`` ignores what it can't show.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import pika.data

_TIMESTAMP = b"T"
# Captured before any patch; getattr so that a changed pika fails the shape check, not the import.
_original_decode_value = getattr(pika.data, "decode_value", None)


def tolerant_decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    if encoded[offset : offset + 1] != _TIMESTAMP:
        decoded: tuple[Any, int] = _original_decode_value(encoded, offset)  # type: ignore[misc]
        return decoded
    (seconds,) = struct.unpack_from(">Q", encoded, offset + 1)
    try:
        value: Any = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        value = seconds  # keep the raw number rather than fail the connection
    return value, offset + 9


def install() -> None:
    # decode_table and nested arrays look the name up at call time, so they use this one too.
    pika.data.decode_value = tolerant_decode_value
