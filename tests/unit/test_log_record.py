"""The JSON Lines record: one ASCII line per message, and every body round-trips."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from logcast.levels import Level
from logcast.log_record import encode_record, iso_ms, original_body
from logcast.wire_format import ReceivedLog

NOW = int(datetime(2026, 11, 27, tzinfo=UTC).timestamp() * 1000)


def received(body: bytes, sent_ms: int | None = None) -> ReceivedLog:
    try:
        text, utf8 = body.decode("utf-8"), True
    except UnicodeDecodeError:
        text, utf8 = body.decode("utf-8", "replace"), False
    return ReceivedLog(body, text, utf8, Level.INFO, "web-1", "api", "abc", sent_ms, NOW)


@given(st.binary(max_size=2000))
def test_any_body_round_trips_through_one_ascii_line(body: bytes) -> None:
    line = encode_record(received(body))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert max(line, default=0) < 0x80
    assert original_body(json.loads(line)) == body


def test_fields_in_order() -> None:
    record = json.loads(encode_record(received(b"boom", sent_ms=1_764_201_600_123)))
    assert record == {
        "time": "2025-11-27T00:00:00.123Z",
        "received": "2026-11-27T00:00:00.000Z",
        "level": "info",
        "host": "web-1",
        "app": "api",
        "message_id": "abc",
        "text": "boom",
    }


def test_a_binary_body_is_stored_once_as_base64() -> None:
    record = json.loads(encode_record(received(b"bad \xff byte")))
    assert list(record)[-2:] == ["text", "body_base64"]
    assert record["text"] is None
    assert original_body(record) == b"bad \xff byte"


def test_a_large_binary_body_costs_at_most_one_and_a_half_times_its_size() -> None:
    body = random.Random(4).randbytes(4 * 1024 * 1024)
    line = encode_record(received(body))
    assert len(line) < 1.5 * len(body)
    assert original_body(json.loads(line)) == body


def test_iso_ms_covers_the_years_datetime_can_show() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(253402300799999) == "9999-12-31T23:59:59.999Z"
