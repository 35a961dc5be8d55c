"""The fenced pika internals: their shape is as tested, they install whole or not at all."""

from __future__ import annotations

import json
from collections import deque
from io import StringIO

import pika.data
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pika import frame, spec
from pika.adapters.utils import io_services_utils

from logcast import pika_internals
from logcast.levels import Level
from logcast.logging_setup import configure_logging
from logcast.pika_internals import coalesced_writes, shape_check
from logcast.pika_internals.coalesced_writes import coalesce
from logcast.pika_internals.fast_properties import decode_properties
from logcast.pika_internals.fast_publish import FramePublisher
from logcast.pika_internals.tolerant_headers import tolerant_decode_value
from logcast.wire_format import MessageEncoder


def test_pika_internals_have_the_tested_shape() -> None:
    """Fails when a pika upgrade moves or reshapes anything the fast paths rely on."""
    assert shape_check.missing_internals() == []


@pytest.fixture
def fresh_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """install() as in a new process; whatever it patches is put back afterwards."""
    monkeypatch.setattr(pika_internals, "_state", {})
    monkeypatch.setattr(pika.data, "decode_value", pika.data.decode_value)
    base = io_services_utils._AsyncTransportBase
    monkeypatch.setattr(base, "_produce", base._produce)


@pytest.mark.usefixtures("fresh_install")
def test_install_patches_both_transports_once() -> None:
    assert pika_internals.install() is True
    assert pika_internals.install() is True
    assert pika.data.decode_value is tolerant_decode_value
    for transport in ("_AsyncPlaintextTransport", "_AsyncSSLTransport"):
        cls = getattr(io_services_utils, transport)
        # TLS has its own _produce, which sends through the base one via super().
        produce = io_services_utils._AsyncTransportBase._produce
        assert produce is coalesced_writes._coalescing_produce, transport
        assert issubclass(cls, io_services_utils._AsyncTransportBase)


class _RecordingSocket:
    """Takes whatever it is given, as a TLS socket with room in its buffer would."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sends.append(bytes(data))
        return len(data)

    def fileno(self) -> int:
        return -1

    def pending(self) -> int:
        return 0


class _QuietLoop:
    def __getattr__(self, _name: str) -> object:
        return lambda *args, **kwargs: None


@pytest.mark.usefixtures("fresh_install")
def test_the_tls_transports_own_produce_sends_coalesced_writes() -> None:
    """pika's _AsyncSSLTransport._produce (SSL want-read/write handling) sends through the base
    _produce; once installed, three frames a message leave in one send(), as in plaintext."""
    assert pika_internals.install() is True
    transport = object.__new__(io_services_utils._AsyncSSLTransport)
    sock = _RecordingSocket()
    chunks = [b"method-frame", b"header-frame", b"body-frame"] * 4
    transport.__dict__.update(
        _sock=sock,
        _nbio=_QuietLoop(),
        _tx_buffers=deque(chunks),
        _tx_buffered_byte_count=sum(map(len, chunks)),
        _ssl_readable_action=None,
        _ssl_writable_action=None,
        _state="connected",
    )
    transport._ssl_writable_action = transport._produce  # as when the socket became writable
    transport._produce()
    assert sock.sends == [b"".join(chunks)]
    assert not transport._tx_buffers and transport._tx_buffered_byte_count == 0


@pytest.mark.usefixtures("fresh_install")
def test_a_changed_internal_means_one_warning_and_no_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(io_services_utils._AsyncTransportBase, "_MAX_RECV_BYTES")
    original = pika.data.decode_value
    stream = StringIO()
    configure_logging("INFO", service="test", stream=stream)
    assert pika_internals.install() is False
    assert pika_internals.enabled() is False
    assert pika.data.decode_value is original  # nothing half-patched
    warnings = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(warnings) == 1
    assert warnings[0]["event"] == "pika.internals_changed"
    assert warnings[0]["missing"] == ["_AsyncTransportBase._MAX_RECV_BYTES"]


@pytest.mark.parametrize("seconds", [0, 1_764_201_600, 2**40, 2**64 - 1])
def test_header_timestamps_of_any_size_decode(seconds: int) -> None:
    encoded = b"T" + seconds.to_bytes(8, "big")
    value, offset = tolerant_decode_value(encoded, 0)
    assert offset == 9
    assert value == seconds if seconds > 2**38 else value.timestamp() == seconds


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=30), st.integers(1, 200))
def test_coalescing_keeps_bytes_and_order(chunks: list[bytes], limit: int) -> None:
    buffers = deque(chunks)
    coalesce(buffers, limit)
    assert b"".join(buffers) == b"".join(chunks)
    assert len(buffers) <= max(len(chunks), 1)


class EmittingConnection:
    """The attributes of pika's connection that FramePublisher uses."""

    def __init__(self, max_body: int) -> None:
        self._body_max_length = max_body
        self.bytes_sent = 0
        self.frames_sent = 0
        self.written: list[bytes] = []

    def _adapter_emit_data(self, data: bytes) -> None:
        self.written.append(data)


class PublishingChannel:
    def __init__(self, connection: EmittingConnection, number: int) -> None:
        self.connection = connection
        self.channel_number = number


@given(
    st.binary(max_size=3000),
    st.integers(1, 700),
    st.integers(1, 65535),
    st.text(max_size=40),
    st.booleans(),
)
def test_frame_publisher_writes_pikas_frames(
    body: bytes, max_body: int, number: int, exchange: str, mandatory: bool
) -> None:
    connection = EmittingConnection(max_body)
    encoder = MessageEncoder("web-1", "api")
    message = encoder.encode("x", Level.INFO)
    FramePublisher(PublishingChannel(connection, number), exchange, mandatory=mandatory).publish(
        body, message.properties
    )
    # What pika's Connection._send_message marshals for the same publish.
    method = spec.Basic.Publish(exchange=exchange, routing_key="", mandatory=mandatory)
    expected = [
        frame.Method(number, method).marshal(),
        frame.Header(number, len(body), message.properties).marshal(),
        *(
            frame.Body(number, body[i : i + max_body]).marshal()
            for i in range(0, len(body), max_body)
        ),
    ]
    assert connection.written == [b"".join(expected)]
    assert connection.bytes_sent == len(b"".join(expected))
    assert connection.frames_sent == len(expected)


def test_fast_properties_match_pika_on_raw_header_bytes() -> None:
    """A foreign publisher's header key and long string that are not UTF-8 stay bytes, as in
    pika; a kind we don't decode inline (a float) goes through pika's own decoder."""
    table = b"\x02k\xff" + b"S" + (3).to_bytes(4, "big") + b"v\xfe\x01" + b"\x01f" + b"d" + bytes(8)
    flags = spec.BasicProperties.FLAG_HEADERS | spec.BasicProperties.FLAG_TIMESTAMP
    encoded = flags.to_bytes(2, "big") + len(table).to_bytes(4, "big") + table + bytes(8)
    ours = decode_properties(encoded)
    theirs = spec.BasicProperties()
    theirs.decode(encoded)
    assert vars(ours) == vars(theirs)
    assert ours.headers == {b"k\xff": b"v\xfe\x01", "f": 0}
