"""Decode deliveries straight from the socket buffer; every other frame still goes through pika.

pika spends most of a receiver's CPU on per-frame objects and dispatch: three frames per message.
This reader takes a complete Basic.Deliver + content header + body frames for our consumer in one
step, decoding the method and the properties with pika's own spec classes, and hands every other
frame (acks' replies, heartbeats, close, cancel-ok...) to pika exactly as pika would. The internals
it uses are listed in this package's docstring; the switch is ``--fast-decode``, and property tests
compare it with pika's decoding.

Reads are appended to one growing buffer, and a delivery known to be incomplete is not parsed
again until enough bytes have arrived, so a large message costs time linear in its size.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pika import frame, spec

from logcast.pika_internals.fast_properties import decode_properties

_FRAME_HEADER = struct.Struct(">BHI")
_METHOD_ID = struct.Struct(">I")
_CONTENT_HEADER = struct.Struct(">HHQ")
_U64 = struct.Struct(">Q")
_DELIVER_ID = getattr(getattr(spec.Basic, "Deliver", None), "INDEX", None)
_FRAME_END = spec.FRAME_END
_FRAME_OVERHEAD = 8  # 7 bytes of header, 1 frame-end octet
_RECV_BYTES = 64 * 1024
INCOMPLETE = -1
NOT_A_DELIVERY = 0

Buffer = bytes | bytearray
Delivery = tuple[spec.Basic.Deliver, spec.BasicProperties, bytes]


class _Cut(Exception):
    """The buffer ends before what is being parsed; ``need`` is a lower bound of its end."""

    def __init__(self, need: int) -> None:
        self.need = need


def _frame_at(buf: Buffer, pos: int, kind: int, channel: int) -> tuple[int, int] | None:
    """(payload start, frame end) of a complete frame of ``kind`` on ``channel``; None if it is
    another kind of frame; raises _Cut if the frame is not complete yet."""
    if len(buf) - pos < 7:
        raise _Cut(pos + _FRAME_OVERHEAD)
    frame_type, frame_channel, size = _FRAME_HEADER.unpack_from(buf, pos)
    end = pos + 7 + size
    if end >= len(buf):
        raise _Cut(end + 1)
    if frame_type != kind or frame_channel != channel or buf[end] != _FRAME_END:
        return None  # something else: pika decides what it is
    return pos + 7, end


def _short_string(buf: Buffer, pos: int) -> tuple[str | bytes, int]:
    """As pika.data.decode_short_string: text when it is UTF-8, else the raw bytes."""
    end = pos + 1 + buf[pos]
    raw = bytes(buf[pos + 1 : end])
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError:
        return raw, end


def _decode_deliver(buf: Buffer, pos: int) -> spec.Basic.Deliver:
    """As spec.Basic.Deliver().decode, without its per-field helper calls."""
    method = spec.Basic.Deliver()
    method.consumer_tag, pos = _short_string(buf, pos)
    method.delivery_tag = _U64.unpack_from(buf, pos)[0]
    method.redelivered = bool(buf[pos + 8] & 1)
    method.exchange, pos = _short_string(buf, pos + 9)
    method.routing_key, pos = _short_string(buf, pos)
    return method


def _parse(buf: Buffer, pos: int, channel: int) -> tuple[int, Delivery | None]:
    method_frame = _frame_at(buf, pos, spec.FRAME_METHOD, channel)
    if method_frame is None:
        return NOT_A_DELIVERY, None
    start, end = method_frame
    if end - start < 4 or _METHOD_ID.unpack_from(buf, start)[0] != _DELIVER_ID:
        return NOT_A_DELIVERY, None
    header = _frame_at(buf, end + 1, spec.FRAME_HEADER, channel)
    if header is None:
        return NOT_A_DELIVERY, None
    header_start, header_end = header
    class_id, _weight, body_size = _CONTENT_HEADER.unpack_from(buf, header_start)
    if class_id != spec.Basic.INDEX:
        return NOT_A_DELIVERY, None
    if len(buf) < header_end + 1 + body_size + (_FRAME_OVERHEAD if body_size else 0):
        raise _Cut(header_end + 1 + body_size + _FRAME_OVERHEAD)
    spans = []  # located first, copied only once the whole body is here
    remaining = body_size
    pos_next = header_end + 1
    while remaining > 0:
        body = _frame_at(buf, pos_next, spec.FRAME_BODY, channel)
        if body is None or body[1] - body[0] > remaining:
            return NOT_A_DELIVERY, None
        spans.append(body)
        remaining -= body[1] - body[0]
        pos_next = body[1] + 1
    method = _decode_deliver(buf, start + 4)
    with memoryview(buf) as view:  # one copy of each piece, and no view outlives this block
        properties = decode_properties(bytes(view[header_start + 12 : header_end]))
        content = b"".join(view[a:b] for a, b in spans)
    return pos_next - pos, (method, properties, content)


def parse_delivery(buf: Buffer, pos: int, channel: int) -> tuple[int, Delivery | None]:
    """Bytes used and the delivery at ``pos``; 0 if the next frame is not one; -1 if cut short."""
    try:
        return _parse(buf, pos, channel)
    except _Cut:
        return INCOMPLETE, None


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
        self._buf = bytearray()
        self._need = 0  # don't parse again until the buffer holds this many bytes
        self.fast = 0
        self.slow = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed on (a frame still arriving)."""
        return len(self._buf)

    def install(self) -> None:
        connection = self._connection
        self._buf += connection._frame_buffer or b""  # what pika had read but not parsed
        connection._frame_buffer = b""
        connection._on_data_available = self.on_data_available
        transport = getattr(connection, "_transport", None)
        if transport is not None:
            # pika reads 4 KiB at a time because its own parser copies the buffer per frame;
            # this reader walks the buffer by offset, so larger reads only save system calls.
            transport._MAX_RECV_BYTES = _RECV_BYTES

    def on_data_available(self, data_in: bytes) -> None:
        connection = self._connection
        connection.bytes_received += len(data_in)  # the heartbeat checker watches this
        buf = self._buf
        buf += data_in
        if len(buf) < self._need:
            return
        pos = 0
        try:
            while pos < len(buf) and not connection.is_closed:
                try:
                    used, delivery = _parse(buf, pos, self._channel)
                except _Cut as cut:
                    self._need = cut.need - pos
                    break
                if delivery is not None and delivery[0].consumer_tag == self._consumer_tag:
                    pos += used
                    connection.frames_received += 3
                    self.fast += 1
                    self._on_delivery(*delivery)
                    continue
                if len(buf) - pos < 7:
                    self._need = _FRAME_OVERHEAD
                    break
                end = pos + 7 + _FRAME_HEADER.unpack_from(buf, pos)[2] + 1
                if end > len(buf):
                    self._need = end - pos
                    break
                used, frame_value = frame.decode_frame(bytes(buf[pos:end]))
                if frame_value is None:
                    self._need = end - pos
                    break
                pos += used
                self.slow += 1
                connection._process_frame(frame_value)
            else:
                self._need = 0
        finally:
            del buf[:pos]
