"""The JSON Lines record: one ASCII line per message, and every body round-trips."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
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


# ---- publisher, seq and stream offset -----------------------------------------------------------
def numbered(
    body: bytes, publisher: str | None, seq: int | None, offset: int | None
) -> ReceivedLog:
    log = received(body, sent_ms=1_764_201_600_123)
    return dataclasses.replace(log, publisher=publisher, seq=seq, offset=offset)


BASE_FIELDS = ["time", "received", "level", "host", "app", "message_id", "text"]


@pytest.mark.parametrize(
    ("publisher", "seq", "offset", "extra"),
    [
        (None, None, None, {}),
        ("emitter-7f3a", 42, None, {"publisher": "emitter-7f3a", "seq": 42}),
        (None, None, 1234, {"offset": 1234}),
        ("emitter-7f3a", 0, 0, {"publisher": "emitter-7f3a", "seq": 0, "offset": 0}),
    ],
    ids=["live-foreign", "live-numbered", "stream-foreign", "stream-numbered-zeros"],
)
def test_publisher_seq_and_offset_appear_only_when_set_after_the_body(
    publisher: str | None, seq: int | None, offset: int | None, extra: dict[str, Any]
) -> None:
    line = encode_record(numbered(b"boom", publisher, seq, offset))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    record = json.loads(line)
    assert list(record) == BASE_FIELDS + list(extra)
    assert {key: record[key] for key in extra} == extra
    assert record["text"] == "boom"
    for absent in {"publisher", "seq", "offset"} - set(extra):
        assert absent not in record


def test_numbers_follow_a_binary_body_and_stay_valid_json() -> None:
    record = json.loads(encode_record(numbered(b"\xff\xfe", "p-1", 7, 99)))
    assert list(record)[-5:] == ["text", "body_base64", "publisher", "seq", "offset"]
    assert original_body(record) == b"\xff\xfe"
    assert (record["publisher"], record["seq"], record["offset"]) == ("p-1", 7, 99)


@given(
    st.text(min_size=1, max_size=255),
    st.integers(0, 2**63 - 1),
    st.none() | st.integers(0, 2**63 - 1),
)
def test_any_publisher_id_is_escaped_into_one_ascii_line(
    publisher: str, seq: int, offset: int | None
) -> None:
    line = encode_record(numbered(b"x", publisher, seq, offset))
    assert line.count(b"\n") == 1
    assert max(line) < 0x80
    record = json.loads(line)
    assert (record["publisher"], record["seq"]) == (publisher, seq)
    assert record.get("offset") == offset
