"""A BasicProperties that hands pika bytes encoded in advance (see ``wire_format``)."""

from __future__ import annotations

import pika


class EncodedProperties(pika.BasicProperties):  # type: ignore[misc]
    """``frame.Header.marshal`` calls ``encode()`` and prepends the frame header to its list."""

    def __init__(self, wire: bytes) -> None:
        super().__init__()
        self.wire = wire

    def encode(self) -> list[bytes]:
        return [self.wire]  # a fresh list each time, since pika inserts into it
