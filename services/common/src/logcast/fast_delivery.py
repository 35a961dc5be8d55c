"""Decode deliveries straight from the socket buffer; every other frame still goes through pika.

pika spends most of a receiver's CPU on per-frame objects and dispatch: three frames per message.
This reader takes a complete Basic.Deliver + content header + body frames for our consumer in one
step, decoding the method and the properties with pika's own spec classes, and hands every other
frame (acks' replies, heartbeats, close, cancel-ok...) to pika exactly as pika would. It leans on
pika internals (``_on_data_available``, ``_frame_buffer``, ``_process_frame``), hence the switch
``--fast-decode`` and the property tests that compare it with pika's decoding.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pika import frame, spec

_FRAME_HEADER = struct.Struct(">BHI")
_METHOD_ID = struct.Struct(">I")
_CONTENT_HEADER = struct.Struct(">HHQ")
_U64 = struct.Struct(">Q")
_DELIVER_ID = spec.Basic.Deliver.INDEX
_FRAME_END = spec.FRAME_END
_RECV_BYTES = 64 * 1024
INCOMPLETE = -1
NOT_A_DELIVERY = 0

Delivery = tuple[spec.Basic.Deliver, spec.BasicProperties, bytes]


def _frame_at(buf: bytes, pos: int, kind: int, channel: int) -> tuple[int, int] | None:
    """(payload start, frame end) of a complete frame of ``kind`` on ``channel``; None if cut."""
    if len(buf) - pos < 7:
        return None
    frame_type, frame_channel, size = _FRAME_HEADER.unpack_from(buf, pos)
    end = pos + 7 + size
    if end >= len(buf):
        return None
    if frame_type != kind or frame_channel != channel or buf[end] != _FRAME_END:
        return (-1, -1)  # something else: pika decides what it is
    return pos + 7, end


def _short_string(buf: bytes, pos: int) -> tuple[str | bytes, int]:
    """As pika.data.decode_short_string: text when it is UTF-8, else the raw bytes."""
    end = pos + 1 + buf[pos]
    raw = buf[pos + 1 : end]
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError:
        return raw, end


def _decode_deliver(buf: bytes, pos: int) -> spec.Basic.Deliver:
    """As spec.Basic.Deliver().decode, without its per-field helper calls."""
    method = spec.Basic.Deliver()
    method.consumer_tag, pos = _short_string(buf, pos)
    method.delivery_tag = _U64.unpack_from(buf, pos)[0]
    method.redelivered = bool(buf[pos + 8] & 1)
    method.exchange, pos = _short_string(buf, pos + 9)
    method.routing_key, pos = _short_string(buf, pos)
    return method


def parse_delivery(buf: bytes, pos: int, channel: int) -> tuple[int, Delivery | None]:
    """Bytes used and the delivery at ``pos``; 0 if the next frame is not one; -1 if cut short."""
    found = _frame_at(buf, pos, spec.FRAME_METHOD, channel)
    if found is None:
        return INCOMPLETE, None
    start, end = found
    if start < 0 or end - start < 4 or _METHOD_ID.unpack_from(buf, start)[0] != _DELIVER_ID:
        return NOT_A_DELIVERY, None
    header = _frame_at(buf, end + 1, spec.FRAME_HEADER, channel)
    if header is None:
        return INCOMPLETE, None
    header_start, header_end = header
    if header_start < 0:
        return NOT_A_DELIVERY, None
    class_id, _weight, body_size = _CONTENT_HEADER.unpack_from(buf, header_start)
    if class_id != spec.Basic.INDEX:
        return NOT_A_DELIVERY, None
    pieces = []
    remaining = body_size
    pos_next = header_end + 1
    while remaining > 0:
        body = _frame_at(buf, pos_next, spec.FRAME_BODY, channel)
        if body is None:
            return INCOMPLETE, None
        body_start, body_end = body
        if body_start < 0 or body_end - body_start > remaining:
            return NOT_A_DELIVERY, None
        pieces.append(buf[body_start:body_end])
        remaining -= body_end - body_start
        pos_next = body_end + 1
    method = _decode_deliver(buf, start + 4)
    properties = spec.BasicProperties()
    properties.decode(buf[header_start + 12 : header_end])
    content = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    return pos_next - pos, (method, properties, content)


class FastDeliveryReader:
    """Replaces one connection's ``_on_data_available``; deliveries for ``consumer_tag`` go to
    ``on_delivery``, everything else to pika."""

    def __init__(
        self,
        connection: Any,
        channel_number: int,
        consumer_tag: str,
        on_delivery: Callable[[spec.Basic.Deliver, spec.BasicProperties, bytes], None],
    ) -> None:
        self._connection = connection
        self._channel = channel_number
        self._consumer_tag = consumer_tag
        self._on_delivery = on_delivery
        self.fast = 0
        self.slow = 0

    def install(self) -> None:
        self._connection._on_data_available = self.on_data_available
        transport = getattr(self._connection, "_transport", None)
        if transport is not None:
            # pika reads 4 KiB at a time because its own parser copies the buffer per frame;
            # this reader walks the buffer by offset, so larger reads only save system calls.
            transport._MAX_RECV_BYTES = _RECV_BYTES

    def on_data_available(self, data_in: bytes) -> None:
        connection = self._connection
        buf = connection._frame_buffer + data_in if connection._frame_buffer else data_in
        pos = 0
        try:
            while pos < len(buf) and not connection.is_closed:
                used, delivery = parse_delivery(buf, pos, self._channel)
                if used == INCOMPLETE:
                    break
                if delivery is not None and delivery[0].consumer_tag == self._consumer_tag:
                    pos += used
                    connection.bytes_received += used  # the heartbeat checker watches this
                    connection.frames_received += 3
                    self.fast += 1
                    self._on_delivery(*delivery)
                    continue
                used, frame_value = frame.decode_frame(buf[pos:])
                if frame_value is None:
                    break
                pos += used
                connection.bytes_received += used
                self.slow += 1
                connection._process_frame(frame_value)
        finally:
            connection._frame_buffer = buf[pos:]
