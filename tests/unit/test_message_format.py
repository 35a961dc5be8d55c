"""Decoding any delivery, and the JSON record that round-trips every body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logcast.levels import Level
from logcast.message import decode_delivery, encode_record, original_body
from logcast.pika_patches import tolerant_decode_value

# Header tables a foreign publisher may send: any value type, nested or not.
ODD_HEADERS = st.dictionaries(
    st.text(max_size=5),
    st.one_of(
        st.none(),
        st.integers(),
        st.binary(),
        st.text(),
        st.booleans(),
        st.lists(st.integers()),
        st.floats(allow_nan=True),
    ),
)
AMQP_TIMESTAMPS = st.one_of(st.none(), st.integers(min_value=0, max_value=2**64 - 1))
NOW = int(datetime(2026, 11, 27, tzinfo=UTC).timestamp() * 1000)


@dataclass
class Props:
    headers: dict[str, Any] | None = None
    app_id: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    content_type: str | None = None


@given(st.binary(max_size=2000))
def test_any_body_round_trips_through_one_ascii_line(body: bytes) -> None:
    line = encode_record(decode_delivery(Props(), body, NOW))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert max(line, default=0) < 0x80
    assert original_body(json.loads(line)) == body


@given(
    ODD_HEADERS.map(lambda h: h | {"time_ms": h.get("x", 0)}),
    AMQP_TIMESTAMPS,
)
def test_odd_time_headers_never_raise(headers: dict[str, Any], timestamp: int | None) -> None:
    log = decode_delivery(Props(headers=headers, timestamp=timestamp), b"x", NOW)
    json.loads(encode_record(log))


@given(
    ODD_HEADERS,
    AMQP_TIMESTAMPS,
)
def test_odd_properties_never_raise(headers: dict[str, Any], timestamp: int | None) -> None:
    log = decode_delivery(Props(headers=headers, timestamp=timestamp), b"x", NOW)
    assert isinstance(log.level, Level)
    json.loads(encode_record(log))


def test_our_metadata_is_read() -> None:
    props = Props(
        headers={"level": "error", "host": "web-1", "time_ms": 1_764_201_600_123},
        app_id="api",
        message_id="abc",
        timestamp=1_764_201_600,
    )
    record = json.loads(encode_record(decode_delivery(props, b"boom", NOW)))
    assert record == {
        "time": "2025-11-27T00:00:00.123Z",
        "received": "2026-11-27T00:00:00.000Z",
        "level": "error",
        "host": "web-1",
        "app": "api",
        "message_id": "abc",
        "text": "boom",
    }


def test_foreign_message_gets_defaults_and_level_from_text() -> None:
    log = decode_delivery(Props(), b"warning: from the tutorial", NOW)
    assert (log.level, log.host, log.app, log.message_id, log.sent_ms) == (
        Level.WARNING,
        "-",
        "-",
        "-",
        None,
    )


@pytest.mark.parametrize("seconds", [0, 1_764_201_600, 2**40, 2**64 - 1])
def test_header_timestamps_of_any_size_decode(seconds: int) -> None:
    encoded = b"T" + seconds.to_bytes(8, "big")
    value, offset = tolerant_decode_value(encoded, 0)
    assert offset == 9
    assert value == seconds if seconds > 2**38 else value.timestamp() == seconds


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=30), st.integers(1, 200))
def test_coalescing_keeps_bytes_and_order(chunks: list[bytes], limit: int) -> None:
    from collections import deque

    from logcast.pika_patches import coalesce

    buffers = deque(chunks)
    coalesce(buffers, limit)
    assert b"".join(buffers) == b"".join(chunks)
    assert len(buffers) <= max(len(chunks), 1)
