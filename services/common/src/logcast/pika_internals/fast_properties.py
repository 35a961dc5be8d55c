"""Decode a content header's properties as pika's ``BasicProperties.decode`` does, faster.

pika decodes every property and every header field through separate helper calls; a receiver
spends about a fifth of its time there. This decoder walks the bytes once. Header values of the
kinds our publishers send (long strings, 32- and 64-bit integers) are decoded inline; any other
kind goes to ``pika.data.decode_value`` (as patched by ``tolerant_headers``), so the result is
pika's for every input, which a property test checks.
"""

from __future__ import annotations

import struct
from typing import Any

import pika.data
from pika import spec

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_LONG_STRING = ord("S")
_INT32 = ord("I")
_INT64 = ord("l")
_P = spec.BasicProperties
# (flag, attribute, kind) in the order the fields follow the flags.
_FIELDS = (
    (_P.FLAG_CONTENT_TYPE, "content_type", "short"),
    (_P.FLAG_CONTENT_ENCODING, "content_encoding", "short"),
    (_P.FLAG_HEADERS, "headers", "table"),
    (_P.FLAG_DELIVERY_MODE, "delivery_mode", "octet"),
    (_P.FLAG_PRIORITY, "priority", "octet"),
    (_P.FLAG_CORRELATION_ID, "correlation_id", "short"),
    (_P.FLAG_REPLY_TO, "reply_to", "short"),
    (_P.FLAG_EXPIRATION, "expiration", "short"),
    (_P.FLAG_MESSAGE_ID, "message_id", "short"),
    (_P.FLAG_TIMESTAMP, "timestamp", "u64"),
    (_P.FLAG_TYPE, "type", "short"),
    (_P.FLAG_USER_ID, "user_id", "short"),
    (_P.FLAG_APP_ID, "app_id", "short"),
    (_P.FLAG_CLUSTER_ID, "cluster_id", "short"),
)


def _text_or_bytes(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _table(buf: bytes, offset: int) -> tuple[dict[str | bytes, Any], int]:
    (size,) = _U32.unpack_from(buf, offset)
    offset += 4
    end = offset + size
    result: dict[str | bytes, Any] = {}
    decode_value = pika.data.decode_value  # looked up now: tolerant_headers may have patched it
    while offset < end:
        key_end = offset + 1 + buf[offset]
        key = _text_or_bytes(buf[offset + 1 : key_end])
        kind = buf[key_end]
        if kind == _LONG_STRING:
            (length,) = _U32.unpack_from(buf, key_end + 1)
            offset = key_end + 5 + length
            result[key] = _text_or_bytes(buf[key_end + 5 : offset])
        elif kind == _INT32:
            result[key] = _I32.unpack_from(buf, key_end + 1)[0]
            offset = key_end + 5
        elif kind == _INT64:
            result[key] = _I64.unpack_from(buf, key_end + 1)[0]
            offset = key_end + 9
        else:
            result[key], offset = decode_value(buf, key_end)
    return result, offset


def decode_properties(buf: bytes) -> spec.BasicProperties:
    """``spec.BasicProperties().decode(buf)``, with the same values and types."""
    flags, offset = 0, 0
    for word in range(4):  # pika reads continuation words; BasicProperties needs one
        (partial,) = _U16.unpack_from(buf, offset)
        offset += 2
        flags |= partial << (word * 16)
        if not partial & 1:
            break
    properties = spec.BasicProperties()
    for flag, name, kind in _FIELDS:
        if not flags & flag:
            continue
        value: Any
        if kind == "short":
            end = offset + 1 + buf[offset]
            value = _text_or_bytes(buf[offset + 1 : end])
            offset = end
        elif kind == "table":
            value, offset = _table(buf, offset)
        elif kind == "octet":
            value = buf[offset]
            offset += 1
        else:
            value = _U64.unpack_from(buf, offset)[0]
            offset += 8
        setattr(properties, name, value)
    return properties
