"""The wire format: body = the UTF-8 text unchanged; metadata in AMQP properties and headers."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, Protocol

from logcast.levels import Level, level_from_text, parse_level_name

CONTENT_TYPE = "text/plain; charset=utf-8"
UNKNOWN = "-"
# AMQP timestamps are whole seconds; this header carries milliseconds for ordering by eye.
TIME_MS_HEADER = "time_ms"
_MIN_MS = -62135596800000  # 0001-01-01
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999


class DeliveryProperties(Protocol):
    """The subset of pika.BasicProperties a receiver reads."""

    headers: dict[str, Any] | None
    app_id: str | None
    message_id: str | None
    timestamp: int | None
    content_type: str | None


@dataclass(frozen=True, slots=True)
class ReceivedLog:
    """One delivery as a receiver understands it, whatever the publisher sent."""

    body: bytes
    text: str
    body_is_utf8: bool
    level: Level
    host: str
    app: str
    message_id: str
    sent_ms: int | None  # milliseconds since the epoch
    received_ms: int


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


def decode_delivery(properties: DeliveryProperties, body: bytes, received_ms: int) -> ReceivedLog:
    """Never raises on foreign or hostile input: missing or odd fields fall back to defaults."""
    try:
        text = body.decode("utf-8")
        body_is_utf8 = True
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
        body_is_utf8 = False
    headers = properties.headers if isinstance(properties.headers, dict) else {}
    level = parse_level_name(headers.get("level")) or level_from_text(text) or Level.INFO
    return ReceivedLog(
        body=body,
        text=text,
        body_is_utf8=body_is_utf8,
        level=level,
        host=_as_text(headers.get("host")) or UNKNOWN,
        app=_as_text(properties.app_id) or UNKNOWN,
        message_id=_as_text(properties.message_id) or UNKNOWN,
        sent_ms=_sent_ms(headers, properties.timestamp),
        received_ms=received_ms,
    )


@functools.lru_cache(maxsize=4096)  # a burst shares a handful of milliseconds
def iso_ms(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_record(log: ReceivedLog) -> bytes:
    """One JSON line, pure ASCII: every control character is escaped, so one message is one line.

    Fields are written in a fixed order; every string goes through json's own C string encoder.
    """
    sent = "null" if log.sent_ms is None else f'"{iso_ms(log.sent_ms)}"'
    parts = [
        '{"time":',
        sent,
        ',"received":"',
        iso_ms(log.received_ms),
        '","level":"',
        log.level.value,
        '","host":',
        _json_string(log.host),
        ',"app":',
        _json_string(log.app),
        ',"message_id":',
        _json_string(log.message_id),
        ',"text":',
        _json_string(log.text),
    ]
    if not log.body_is_utf8:
        parts += [',"body_base64":"', base64.b64encode(log.body).decode("ascii"), '"']
    parts.append("}\n")
    return "".join(parts).encode("ascii")


def original_body(record: dict[str, Any]) -> bytes:
    """The exact bytes a publisher sent, from a record written by ``encode_record``."""
    if "body_base64" in record:
        return base64.b64decode(record["body_base64"])
    return str(record["text"]).encode("utf-8")
