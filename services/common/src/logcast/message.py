"""The wire format: body = the UTF-8 text unchanged; metadata in AMQP properties and headers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from logcast.levels import Level, level_from_text, parse_level_name

CONTENT_TYPE = "text/plain; charset=utf-8"
UNKNOWN = "-"
# AMQP timestamps are whole seconds; this header carries milliseconds for ordering by eye.
TIME_MS_HEADER = "time_ms"


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
    sent_at: datetime | None
    received_at: datetime


def outbound_headers(level: Level, host: str, time_ms: int) -> dict[str, Any]:
    return {"level": level.value, "host": host, TIME_MS_HEADER: time_ms}


def _as_text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return None


def _from_epoch(seconds: object) -> datetime | None:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):  # beyond year 9999, or negative on some OSes
        return None


def _sent_at(headers: dict[str, Any], timestamp: object) -> datetime | None:
    time_ms = headers.get(TIME_MS_HEADER)
    if isinstance(time_ms, int) and not isinstance(time_ms, bool):
        return _from_epoch(time_ms / 1000) or _from_epoch(timestamp)
    return _from_epoch(timestamp)


def decode_delivery(
    properties: DeliveryProperties, body: bytes, received_at: datetime
) -> ReceivedLog:
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
        sent_at=_sent_at(headers, properties.timestamp),
        received_at=received_at,
    )


def iso_time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_dict(log: ReceivedLog) -> dict[str, Any]:
    """The JSON record of one message; ``body_base64`` keeps bytes that are not UTF-8 exact."""
    record: dict[str, Any] = {
        "time": iso_time(log.sent_at),
        "received": iso_time(log.received_at),
        "level": log.level.value,
        "host": log.host,
        "app": log.app,
        "message_id": log.message_id,
        "text": log.text,
    }
    if not log.body_is_utf8:
        record["body_base64"] = base64.b64encode(log.body).decode("ascii")
    return record


def encode_record(log: ReceivedLog) -> bytes:
    """One JSON line, pure ASCII: every control character is escaped, so one message is one line."""
    return json.dumps(record_dict(log), ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def original_body(record: dict[str, Any]) -> bytes:
    """The exact bytes a publisher sent, from a record written by ``encode_record``."""
    if "body_base64" in record:
        return base64.b64decode(record["body_base64"])
    return str(record["text"]).encode("utf-8")
