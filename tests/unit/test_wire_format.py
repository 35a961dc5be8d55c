"""The wire format: our encoder matches pika's byte for byte, and any delivery decodes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pika import frame

from logcast.errors import UsageError
from logcast.levels import Level
from logcast.wire_format import MessageEncoder, decode_delivery

names = st.text(max_size=60)
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


def encoders(host: str, app_id: str, time_ms: int, publisher: str) -> list[MessageEncoder]:
    """Our pre-encoding encoder and the same encoder building pika's own BasicProperties."""
    return [
        MessageEncoder(
            host, app_id, preencoded=preencoded, clock_ms=lambda: time_ms, publisher_id=publisher
        )
        for preencoded in (True, False)
    ]


@given(
    st.sampled_from(list(Level)),
    names,
    names,
    st.text(min_size=1, max_size=20),
    st.one_of(st.integers(0, 2**31 - 1), st.integers(2**31, 2**62)),
)
def test_preencoded_properties_are_pikas_bytes(
    level: Level, host: str, app_id: str, publisher: str, time_ms: int
) -> None:
    text = f"{level}: a line from {host}"
    ours, reference = (e.encode(text, level) for e in encoders(host, app_id, time_ms, publisher))
    assert ours.body == reference.body == text.encode()
    assert b"".join(ours.properties.encode()) == b"".join(reference.properties.encode())
    assert (
        frame.Header(1, 5, ours.properties).marshal()
        == frame.Header(1, 5, reference.properties).marshal()
    )
    decoded = pika.BasicProperties()
    decoded.decode(b"".join(ours.properties.encode()))
    assert decoded.headers == {
        "level": level.value,
        "host": host,
        "time_ms": time_ms,
        "publisher": publisher,
        "seq": 0,
    }
    assert (decoded.message_id, decoded.app_id, decoded.timestamp) == (
        f"{publisher}{0:012x}",
        app_id,
        time_ms // 1000,
    )


@given(st.sampled_from(list(Level)), names, st.text(max_size=300))
def test_preencoded_logger_header_is_pikas_bytes(level: Level, host: str, logger: str) -> None:
    ours, reference = (
        e.encode("a record", level, logger) for e in encoders(host, "app", 1_764_201_600_123, "p")
    )
    assert b"".join(ours.properties.encode()) == b"".join(reference.properties.encode())
    decoded = pika.BasicProperties()
    decoded.decode(b"".join(ours.properties.encode()))
    assert decoded.headers["logger"] == logger


def test_encoded_messages_decode_to_what_was_sent() -> None:
    encoder = MessageEncoder("web-1", "api", clock_ms=lambda: 1_764_201_600_123)
    message = encoder.encode("boom", Level.ERROR)
    properties = pika.BasicProperties()
    properties.decode(b"".join(message.properties.encode()))
    log = decode_delivery(properties, message.body, NOW)
    assert (log.text, log.level, log.host, log.app, log.sent_ms) == (
        "boom",
        Level.ERROR,
        "web-1",
        "api",
        1_764_201_600_123,
    )
    assert (log.publisher, log.seq) == (encoder.publisher_id, 0)
    second = encoder.encode("again", Level.INFO)
    properties.decode(b"".join(second.properties.encode()))
    assert decode_delivery(properties, second.body, NOW).seq == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"publisher": "p", "seq": -1},
        {"publisher": "p", "seq": True},
        {"publisher": "", "seq": 3},
        {"publisher": 7, "seq": 3},
        {"seq": 3},
        {"publisher": "p", "seq": "3"},
    ],
)
def test_foreign_or_odd_sequence_headers_are_not_tracked(headers: dict[str, Any]) -> None:
    log = decode_delivery(Props(headers=headers), b"x", NOW)
    assert (log.publisher, log.seq) == (None, None)


def test_message_ids_are_unique() -> None:
    encoder = MessageEncoder("h", "a")
    encoded = [b"".join(encoder.encode("x", Level.INFO).properties.encode()) for _ in range(1000)]
    assert len(set(encoded)) == 1000


def test_overlong_app_id_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--app-id"):
        MessageEncoder("host", "é" * 200)


def test_our_metadata_is_read() -> None:
    props = Props(
        headers={"level": "error", "host": "web-1", "time_ms": 1_764_201_600_123},
        app_id="api",
        message_id="abc",
        timestamp=1_764_201_600,
    )
    log = decode_delivery(props, b"boom", NOW)
    assert (log.level, log.host, log.app, log.message_id, log.sent_ms, log.received_ms) == (
        Level.ERROR,
        "web-1",
        "api",
        "abc",
        1_764_201_600_123,
        NOW,
    )


def test_foreign_message_gets_defaults_and_level_from_text() -> None:
    log = decode_delivery(Props(), b"warning: from the tutorial", NOW)
    assert (log.level, log.host, log.app, log.message_id, log.sent_ms) == (
        Level.WARNING,
        "-",
        "-",
        "-",
        None,
    )


@given(ODD_HEADERS.map(lambda h: h | {"time_ms": h.get("x", 0)}), AMQP_TIMESTAMPS)
def test_odd_time_headers_never_raise(headers: dict[str, Any], timestamp: int | None) -> None:
    log = decode_delivery(Props(headers=headers, timestamp=timestamp), b"x", NOW)
    assert log.sent_ms is None or -62135596800000 <= log.sent_ms <= 253402300799999


@given(ODD_HEADERS, AMQP_TIMESTAMPS)
def test_odd_properties_never_raise(headers: dict[str, Any], timestamp: int | None) -> None:
    log = decode_delivery(Props(headers=headers, timestamp=timestamp), b"x", NOW)
    assert isinstance(log.level, Level)
    assert isinstance(log.host, str)
