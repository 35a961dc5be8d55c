"""The handler's pure parts: level mapping and the bounded drop-oldest buffer."""

from __future__ import annotations

import logging

import pytest

from logcast.handler import LogcastHandler, RecordBuffer, level_of
from logcast.levels import Level
from logcast.wire_format import SEQ_HEADER, MessageEncoder


@pytest.mark.parametrize(
    ("levelno", "level"),
    [
        (logging.CRITICAL, Level.CRITICAL),
        (logging.ERROR + 5, Level.ERROR),
        (logging.ERROR, Level.ERROR),
        (logging.WARNING, Level.WARNING),
        (logging.INFO, Level.INFO),
        (logging.INFO - 1, Level.DEBUG),
        (logging.NOTSET, Level.DEBUG),
    ],
)
def test_stdlib_levels_map_to_the_level_at_or_below(levelno: int, level: Level) -> None:
    assert level_of(levelno) is level


def test_a_full_buffer_drops_the_oldest_and_counts_it() -> None:
    wakes: list[int] = []
    buffer = RecordBuffer(3, lambda: wakes.append(1))
    encoder = MessageEncoder("h", "a", preencoded=False)
    dropped = [buffer.put(encoder.encode(f"r{i}", Level.INFO)) for i in range(5)]
    assert dropped == [False, False, False, True, True]
    assert buffer.dropped == 2
    assert len(wakes) == 5
    kept = buffer.drain(10)
    # The publisher's first record stays, so that receivers start counting at 0: numbers 1 and 2
    # were handed out and dropped, and every receiver counts them missed.
    assert [m.body for m in kept] == [b"r0", b"r3", b"r4"]
    assert [m.properties.headers[SEQ_HEADER] for m in kept] == [0, 3, 4]
    assert buffer.accepted == 5
    # Once the first is taken, the oldest goes.
    for i in range(5, 9):
        buffer.put(encoder.encode(f"r{i}", Level.INFO))
    assert [m.body for m in buffer.drain(10)] == [b"r6", b"r7", b"r8"]
    assert buffer.dropped == 3


def test_a_buffer_of_one_keeps_the_newest() -> None:
    buffer = RecordBuffer(1, lambda: None)
    encoder = MessageEncoder("h", "a", preencoded=False)
    for i in range(3):
        buffer.put(encoder.encode(f"r{i}", Level.INFO))
    assert [m.body for m in buffer.drain(10)] == [b"r2"]
    assert buffer.dropped == 2


def test_the_buffer_is_exhausted_only_after_finish_and_the_last_drain() -> None:
    buffer = RecordBuffer(10, lambda: None)
    encoder = MessageEncoder("h", "a", preencoded=False)
    buffer.put(encoder.encode("last", Level.INFO))
    assert buffer.drain(10) and not buffer.exhausted
    buffer.put(encoder.encode("more", Level.INFO))
    buffer.finish()
    assert not buffer.exhausted
    assert [m.body for m in buffer.drain(10)] == [b"more"]
    assert buffer.exhausted


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"buffer": 0}, "buffer must be at least 1"),
        ({"close_timeout": -1}, "close_timeout"),
        ({"url": "http://nope"}, "--amqp-url / LOGCAST_AMQP_URL"),
        ({"exchange": "bad name!"}, "--exchange / LOGCAST_EXCHANGE"),
    ],
)
def test_bad_arguments_raise_one_clear_value_error(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match="LogcastHandler") as raised:
        LogcastHandler(**kwargs)  # type: ignore[arg-type]
    assert named in str(raised.value)
