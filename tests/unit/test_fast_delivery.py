"""The fast receive path decodes exactly what pika decodes, wherever the socket reads split."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pika import frame, spec

from logcast.pika_internals import fast_delivery
from logcast.pika_internals.fast_delivery import FastDeliveryReader

CHANNEL = 1
TAG = "ctag-1"

short = st.text(max_size=12)
field_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.text(max_size=12),
        st.binary(max_size=12),
        st.datetimes(min_value=datetime(1970, 1, 2), timezones=st.just(UTC)).map(
            lambda d: d.replace(microsecond=0)
        ),
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(short, children, max_size=3),
    max_leaves=8,
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


properties = st.builds(
    spec.BasicProperties,
    content_type=optional(short),
    content_encoding=optional(short),
    headers=optional(st.dictionaries(short, field_value, max_size=5)),
    delivery_mode=optional(st.sampled_from([1, 2])),
    priority=optional(st.integers(0, 255)),
    correlation_id=optional(short),
    reply_to=optional(short),
    expiration=optional(st.integers(0, 10**9).map(str)),
    message_id=optional(short),
    timestamp=optional(st.integers(0, 2**63 - 1)),
    type=optional(short),
    user_id=optional(short),
    app_id=optional(short),
    cluster_id=optional(short),
)


def delivery_frames(
    channel: int,
    tag: str,
    delivery_tag: int,
    props: spec.BasicProperties,
    *,
    body: bytes,
    frame_max: int,
    exchange: str | bytes = "logs",
    routing_key: str | bytes = "",
) -> list[bytes]:
    """Marshalled the way a broker sends them: method, header, body split at frame_max."""
    method = spec.Basic.Deliver(tag, delivery_tag, delivery_tag % 2 == 0, exchange, routing_key)
    frames = [
        frame.Method(channel, method).marshal(),
        frame.Header(channel, len(body), props).marshal(),
    ]
    step = frame_max - 8
    frames += [frame.Body(channel, body[i : i + step]).marshal() for i in range(0, len(body), step)]
    return frames


def pika_decode(frames: list[bytes]) -> list[Any]:
    return [frame.decode_frame(data)[1] for data in frames]


class FakeConnection:
    """The attributes of pika's Connection that the reader touches."""

    def __init__(self) -> None:
        self._frame_buffer = b""
        self.bytes_received = 0
        self.frames_received = 0
        self.is_closed = False
        self.processed: list[Any] = []

    def _process_frame(self, value: Any) -> None:
        self.processed.append(value)


item = st.one_of(
    st.tuples(st.just("ours"), properties, st.binary(max_size=600)),
    st.tuples(st.just("ours-odd-names"), properties, st.binary(max_size=20)),
    st.tuples(st.just("other-consumer"), properties, st.binary(max_size=50)),
    st.tuples(st.just("other-channel"), properties, st.binary(max_size=50)),
    st.tuples(st.just("heartbeat"), st.none(), st.none()),
    st.tuples(st.just("ack"), st.none(), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(item, max_size=8), st.lists(st.integers(0, 5000), max_size=10), st.integers(16, 300)
)
def test_fast_path_matches_pika(items: list[Any], cuts: list[int], frame_max: int) -> None:
    stream: list[bytes] = []
    expected_fast: list[tuple[Any, Any, bytes]] = []
    expected_slow: list[bytes] = []
    for n, (kind, props, body) in enumerate(items, start=1):
        if kind == "heartbeat":
            frames = [frame.Heartbeat().marshal()]
        elif kind == "ack":
            frames = [frame.Method(CHANNEL, spec.Basic.Ack(n, False)).marshal()]
        else:
            channel = 2 if kind == "other-channel" else CHANNEL
            tag = TAG if kind.startswith("ours") else "someone-else"
            odd = kind == "ours-odd-names"
            frames = delivery_frames(
                channel,
                tag,
                n,
                props,
                body=body,
                frame_max=frame_max,
                exchange=b"\xff\xfe-not-utf8" if odd else "logs",
                routing_key="r\u00e9sum\u00e9" if odd else "",
            )
        stream += frames
        if kind.startswith("ours"):
            method, header, *bodies = pika_decode(frames)
            expected_fast.append(
                (method.method, header.properties, b"".join(b.fragment for b in bodies))
            )
        else:
            expected_slow += frames

    connection = FakeConnection()
    got: list[tuple[Any, Any, bytes]] = []
    reader = FastDeliveryReader(connection, CHANNEL, TAG, lambda m, p, b: got.append((m, p, b)))
    reader.install()
    data = b"".join(stream)
    points = sorted({min(c, len(data)) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        connection._on_data_available(data[start:point])  # type: ignore[attr-defined]
        start = point

    assert [(vars(m), vars(p), b) for m, p, b in got] == [
        (vars(m), vars(p), b) for m, p, b in expected_fast
    ]
    assert [value.marshal() for value in connection.processed] == expected_slow
    assert connection.bytes_received == len(data)
    assert connection._frame_buffer == b""
    assert reader.fast == len(expected_fast)
    assert reader.buffered == 0


def test_a_large_message_is_parsed_once_not_once_per_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads of a 16 MiB delivery are appended; it is parsed again only once it can be complete."""
    calls = []
    real_parse = fast_delivery._parse

    def counting_parse(buf: Any, pos: int, channel: int) -> Any:
        calls.append(len(buf))
        return real_parse(buf, pos, channel)

    monkeypatch.setattr(fast_delivery, "_parse", counting_parse)
    body = bytes(range(256)) * (16 * 4096)
    data = b"".join(
        delivery_frames(CHANNEL, TAG, 1, spec.BasicProperties(), body=body, frame_max=131072)
    )
    connection = FakeConnection()
    got: list[bytes] = []
    FastDeliveryReader(connection, CHANNEL, TAG, lambda m, p, b: got.append(b)).install()
    reads = range(0, len(data), 65536)
    for start in reads:
        connection._on_data_available(data[start : start + 65536])  # type: ignore[attr-defined]
    assert got == [body]
    assert len(reads) > 250
    assert len(calls) <= 3, calls
