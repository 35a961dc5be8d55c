"""The JSON Lines record a receiver writes for each message, and the times it shows."""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from logcast.wire_format import ReceivedLog


@functools.lru_cache(maxsize=4096)  # a burst shares a handful of milliseconds
def iso_ms(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_record(log: ReceivedLog) -> bytes:
    """One JSON line, pure ASCII: every control character is escaped, so one message is one line.

    Fields are written in a fixed order; every string goes through json's own C string encoder,
    except base64, which has nothing to escape. A body that is not UTF-8 is stored once, as
    ``"text": null`` and its exact bytes in ``body_base64`` (4/3 of its size on disk).
    A logcast publisher's id and number follow, and the stream offset when read from history.
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
    ]
    if log.body_is_utf8:
        parts += [',"text":', _json_string(log.text)]
    else:
        # Not as text too: each bad byte would cost 6 bytes as an escaped U+FFFD.
        parts += [',"text":null,"body_base64":"', base64.b64encode(log.body).decode("ascii"), '"']
    if log.publisher is not None:
        # What a resumed archive reads back to drop a publisher's resends (see resume_point).
        parts += [',"publisher":', _json_string(log.publisher), ',"seq":', str(log.seq)]
    if log.offset is not None:
        parts += [',"offset":', str(log.offset)]
    parts.append("}\n")
    return "".join(parts).encode("ascii")


def original_body(record: dict[str, Any]) -> bytes:
    """The exact bytes a publisher sent, from a record written by ``encode_record``."""
    if "body_base64" in record:
        return base64.b64decode(record["body_base64"])
    return str(record["text"]).encode("utf-8")
