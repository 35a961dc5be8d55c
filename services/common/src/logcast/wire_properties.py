"""The emitter's AMQP properties, encoded once when a message is made, not on every publish.

pika re-encodes a BasicProperties (flags, short strings, the headers table) each time a message
is published, on the I/O loop's thread. Our messages all have one shape, so their bytes are built
here, from pieces prepared once per process; tests check them against pika's encoder byte for byte.
"""

from __future__ import annotations

import struct

import pika
from pika import spec

from logcast.errors import UsageError
from logcast.levels import Level
from logcast.message import CONTENT_TYPE, TIME_MS_HEADER

_FLAGS = (
    spec.BasicProperties.FLAG_CONTENT_TYPE
    | spec.BasicProperties.FLAG_HEADERS
    | spec.BasicProperties.FLAG_DELIVERY_MODE
    | spec.BasicProperties.FLAG_MESSAGE_ID
    | spec.BasicProperties.FLAG_TIMESTAMP
    | spec.BasicProperties.FLAG_APP_ID
)
_TRANSIENT = 1
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")
_UINT64 = struct.Struct(">Q")


def short_string(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 255:
        raise UsageError(f"{what} is longer than 255 bytes in UTF-8")
    return bytes([len(raw)]) + raw


def _long_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return b"S" + _UINT32.pack(len(raw)) + raw


def _integer(value: int) -> bytes:
    """As pika: a 32-bit 'I' when it fits, else a 64-bit 'l'."""
    if -(2**31) <= value < 2**31:
        return b"I" + _INT32.pack(value)
    return b"l" + _INT64.pack(value)


class EncodedProperties(pika.BasicProperties):  # type: ignore[misc]
    """A BasicProperties that hands pika bytes encoded in advance."""

    def __init__(self, wire: bytes) -> None:
        super().__init__()
        self.wire = wire

    def encode(self) -> list[bytes]:
        return [self.wire]  # a fresh list: pika inserts the frame header into it


class PropertiesEncoder:
    """Encodes content_type, headers {level, host, time_ms}, delivery_mode, message_id,
    timestamp and app_id; raises UsageError at once for a host or app id that cannot fit."""

    def __init__(self, host: str, app_id: str) -> None:
        self._prefix = _UINT32.pack(_FLAGS)[2:] + short_string(CONTENT_TYPE, "content type")
        self._levels = {
            level: short_string("level", "key") + _long_string(level.value) for level in Level
        }
        self._host = short_string("host", "key") + _long_string(host)
        self._time_key = short_string(TIME_MS_HEADER, "key")
        self._app = short_string(app_id, "--app-id")

    def encode(self, level: Level, message_id: str, time_ms: int) -> bytes:
        table = self._levels[level] + self._host + self._time_key + _integer(time_ms)
        return b"".join(
            (
                self._prefix,
                _UINT32.pack(len(table)),
                table,
                bytes((_TRANSIENT,)),
                short_string(message_id, "message id"),
                _UINT64.pack(time_ms // 1000),
                self._app,
            )
        )
