"""The wire format, in one place: what a message carries, how we encode it, how any is decoded.

The body is the log line's UTF-8 text, unchanged, so the tutorial's programs interoperate. The
metadata travels in AMQP properties (content_type, delivery_mode, message_id, timestamp, app_id)
and in the headers named below. Adding a header is a change here only: ``_headers`` (pika's
encoder) and ``_header_table`` (ours) must agree, which a unit test checks byte for byte.
"""

from __future__ import annotations

import itertools
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pika
from pika import spec

from logcast.errors import UsageError
from logcast.levels import Level, level_from_text, parse_level_name
from logcast.pika_internals.encoded_properties import EncodedProperties

CONTENT_TYPE = "text/plain; charset=utf-8"
LEVEL_HEADER = "level"
HOST_HEADER = "host"
# AMQP timestamps are whole seconds; this header carries milliseconds for ordering by eye.
TIME_MS_HEADER = "time_ms"
# Loss accounting: who published, and its running count (receivers find gaps and repeats).
PUBLISHER_HEADER = "publisher"
SEQ_HEADER = "seq"
# Set by the logging handler: the name of the logger that made the record.
LOGGER_HEADER = "logger"
UNKNOWN = "-"
TRANSIENT = 1  # delivery_mode: log lines are not persisted by the broker
_MIN_MS = -62135596800000  # 0001-01-01
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999


# ---- outbound ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutboundMessage:
    body: bytes
    properties: pika.BasicProperties


def new_publisher_id() -> str:
    return uuid.uuid4().hex[:20]


_FLAGS = (
    spec.BasicProperties.FLAG_CONTENT_TYPE
    | spec.BasicProperties.FLAG_HEADERS
    | spec.BasicProperties.FLAG_DELIVERY_MODE
    | spec.BasicProperties.FLAG_MESSAGE_ID
    | spec.BasicProperties.FLAG_TIMESTAMP
    | spec.BasicProperties.FLAG_APP_ID
)
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")
_UINT64 = struct.Struct(">Q")


def _short_string(value: str, what: str) -> bytes:
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


class MessageEncoder:
    """Turns a line of text and its level into an OutboundMessage of our wire format.

    Each message gets this publisher's next sequence number (from 0). Its message id is the
    publisher id followed by that number in hex, so ids are unique without a urandom call.
    With ``preencoded`` (the default, used when the pika internals check passed) the properties
    are encoded once here, from pieces prepared per process, instead of by pika on every publish.
    Raises UsageError at once for a host or app id that cannot fit.
    """

    def __init__(
        self,
        host: str,
        app_id: str,
        *,
        preencoded: bool = True,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        publisher_id: str | None = None,
    ) -> None:
        self.host = host
        self.app_id = app_id
        self.preencoded = preencoded
        self.publisher_id = publisher_id or new_publisher_id()
        self._clock_ms = clock_ms
        self._seq = itertools.count()
        self._prefix = _UINT32.pack(_FLAGS)[2:] + _short_string(CONTENT_TYPE, "content type")
        self._levels = {
            level: _short_string(LEVEL_HEADER, "key") + _long_string(level.value) for level in Level
        }
        self._host = _short_string(HOST_HEADER, "key") + _long_string(host)
        self._time_key = _short_string(TIME_MS_HEADER, "key")
        self._publisher = _short_string(PUBLISHER_HEADER, "key") + _long_string(self.publisher_id)
        self._seq_key = _short_string(SEQ_HEADER, "key")
        self._logger_key = _short_string(LOGGER_HEADER, "key")
        self._app = _short_string(app_id, "--app-id")

    def _headers(
        self, level: Level, time_ms: int, seq: int, logger: str | None = None
    ) -> dict[str, Any]:
        headers = {
            LEVEL_HEADER: level.value,
            HOST_HEADER: self.host,
            TIME_MS_HEADER: time_ms,
            PUBLISHER_HEADER: self.publisher_id,
            SEQ_HEADER: seq,
        }
        if logger is not None:
            headers[LOGGER_HEADER] = logger
        return headers

    def _header_table(
        self, level: Level, time_ms: int, seq: int, logger: str | None = None
    ) -> bytes:
        """``_headers`` as pika encodes a field table, keys in the same order."""
        return b"".join(
            (
                self._levels[level],
                self._host,
                self._time_key,
                _integer(time_ms),
                self._publisher,
                self._seq_key,
                _integer(seq),
                b"" if logger is None else self._logger_key + _long_string(logger),
            )
        )

    def encode(self, text: str, level: Level, logger: str | None = None) -> OutboundMessage:
        time_ms = self._clock_ms()
        seq = next(self._seq)
        message_id = f"{self.publisher_id}{seq:012x}"
        body = text.encode("utf-8")
        if not self.preencoded:
            properties = pika.BasicProperties(
                content_type=CONTENT_TYPE,
                headers=self._headers(level, time_ms, seq, logger),
                delivery_mode=TRANSIENT,
                message_id=message_id,
                timestamp=time_ms // 1000,
                app_id=self.app_id,
            )
            return OutboundMessage(body, properties)
        table = self._header_table(level, time_ms, seq, logger)
        wire = b"".join(
            (
                self._prefix,
                _UINT32.pack(len(table)),
                table,
                bytes((TRANSIENT,)),
                _short_string(message_id, "message id"),
                _UINT64.pack(time_ms // 1000),
                self._app,
            )
        )
        return OutboundMessage(body, EncodedProperties(wire))


# ---- inbound -------------------------------------------------------------------------------------
class DeliveryProperties(Protocol):
    """The subset of pika.BasicProperties a receiver reads."""

    headers: dict[str, Any] | None
    app_id: str | None
    message_id: str | None
    timestamp: int | None
    content_type: str | None


@dataclass(slots=True)  # not frozen: its __init__ would cost ~1.6 µs more per delivery
class ReceivedLog:
    """One delivery as a receiver understands it, whatever the publisher sent. Treat it as
    read-only."""

    body: bytes
    text: str
    body_is_utf8: bool
    level: Level
    host: str
    app: str
    message_id: str
    sent_ms: int | None  # milliseconds since the epoch
    received_ms: int
    publisher: str | None = None  # with seq: set only by logcast publishers
    seq: int | None = None
    offset: int | None = None  # position in the history stream (set by the broker), if read there


def _as_text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return None


def _epoch_ms(seconds: object) -> int | None:
    """Milliseconds for a timestamp datetime can show (years 1..9999), else None."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    try:
        ms = int(seconds * 1000)
    except (ValueError, OverflowError):  # nan, inf
        return None
    return ms if _MIN_MS <= ms <= _MAX_MS else None


def _sent_ms(headers: dict[str, Any], timestamp: object) -> int | None:
    time_ms = headers.get(TIME_MS_HEADER)
    if isinstance(time_ms, int) and not isinstance(time_ms, bool):
        return _epoch_ms(time_ms / 1000) or _epoch_ms(timestamp)
    return _epoch_ms(timestamp)


def _sequence(headers: dict[str, Any]) -> tuple[str | None, int | None]:
    """(publisher, seq) when both are present and sane; else (None, None): not tracked."""
    publisher = _as_text(headers.get(PUBLISHER_HEADER))
    seq = headers.get(SEQ_HEADER)
    if not publisher or len(publisher) > 255:
        return None, None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return None, None
    return publisher, seq


def decode_delivery(
    properties: DeliveryProperties, body: bytes, received_ms: int, *, offset: int | None = None
) -> ReceivedLog:
    """Never raises on foreign or hostile input: missing or odd fields fall back to defaults.

    ``offset`` comes from the caller, which knows it read a stream: in a live queue a publisher
    could set the stream's header itself."""
    try:
        text = body.decode("utf-8")
        body_is_utf8 = True
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
        body_is_utf8 = False
    headers = properties.headers if isinstance(properties.headers, dict) else {}
    level = parse_level_name(headers.get(LEVEL_HEADER)) or level_from_text(text) or Level.INFO
    publisher, seq = _sequence(headers)
    return ReceivedLog(
        body=body,
        text=text,
        body_is_utf8=body_is_utf8,
        level=level,
        host=_as_text(headers.get(HOST_HEADER)) or UNKNOWN,
        app=_as_text(properties.app_id) or UNKNOWN,
        message_id=_as_text(properties.message_id) or UNKNOWN,
        sent_ms=_sent_ms(headers, properties.timestamp),
        received_ms=received_ms,
        publisher=publisher,
        seq=seq,
        offset=offset,
    )
