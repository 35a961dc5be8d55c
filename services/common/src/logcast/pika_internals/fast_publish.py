"""Publish a pre-encoded message as whole frames, written to the connection in one piece.

pika's ``basic_publish`` builds a Basic.Publish object, three frame objects and marshals each one,
for every message. Ours differ only in body and properties, so the method frame is built once per
channel and the content frames with two struct packs. The bytes are what pika would send (a unit
test compares them); they go through the connection's ``_adapter_emit_data`` with its
``bytes_sent``/``frames_sent`` counters kept, as pika does.
"""

from __future__ import annotations

import struct
from typing import Any

from pika import frame, spec

from logcast.pika_internals.encoded_properties import EncodedProperties

_FRAME_HEADER = struct.Struct(">BHI")
_CONTENT_HEADER = struct.Struct(">HHQ")
_FRAME_END = bytes((spec.FRAME_END,))


def content_frames(
    channel_number: int, max_body: int, properties: bytes, body: bytes
) -> list[bytes]:
    """The content header frame and the body frames of one message, marshalled."""
    payload = _CONTENT_HEADER.pack(spec.Basic.INDEX, 0, len(body)) + properties
    parts = [
        _FRAME_HEADER.pack(spec.FRAME_HEADER, channel_number, len(payload)),
        payload,
        _FRAME_END,
    ]
    for start in range(0, len(body), max_body):
        piece = body[start : start + max_body]
        parts += [
            _FRAME_HEADER.pack(spec.FRAME_BODY, channel_number, len(piece)),
            piece,
            _FRAME_END,
        ]
    return parts


class FramePublisher:
    """Publishes on one open channel; messages whose properties are not pre-encoded go to pika."""

    def __init__(self, channel: Any, exchange: str, *, mandatory: bool) -> None:
        self._channel = channel
        self._connection = channel.connection
        self._number: int = channel.channel_number
        self._exchange = exchange
        self._mandatory = mandatory
        method = spec.Basic.Publish(exchange=exchange, routing_key="", mandatory=mandatory)
        self._method_frame: bytes = frame.Method(self._number, method).marshal()
        self._max_body: int = self._connection._body_max_length

    def publish(self, body: bytes, properties: Any) -> None:
        if not isinstance(properties, EncodedProperties):
            self._channel.basic_publish(
                self._exchange, "", body, properties, mandatory=self._mandatory
            )
            return
        parts = content_frames(self._number, self._max_body, properties.wire, body)
        data = b"".join([self._method_frame, *parts])
        connection = self._connection
        connection.bytes_sent += len(data)
        connection.frames_sent += 1 + len(parts) // 3
        connection._adapter_emit_data(data)
