"""Bookkeeping for pipelined publisher confirms: what is pending, in flight, and settled."""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class PublishCounts:
    published: int = 0  # messages published at least once (first sends)
    confirmed: int = 0
    republished: int = 0  # publishes that were re-sends (after a nack or a lost channel)
    nacked: int = 0
    unroutable: int = 0


class ConfirmLedger(Generic[T]):
    """Messages wait in line, then sit in flight under their delivery tag until confirmed.

    Delivery tags restart at 1 on every channel; ``requeue_unconfirmed`` is called when a channel
    dies. Messages to send again (nacked or unconfirmed) go first, in their original order.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.counts = PublishCounts()
        self._sequence = itertools.count()
        self._pending: deque[tuple[int, T]] = deque()
        self._retry: list[tuple[int, T]] = []  # a heap ordered by original sequence
        self._in_flight: OrderedDict[int, tuple[int, T]] = OrderedDict()
        self._next_tag = 1

    def add(self, items: Iterable[T]) -> None:
        self._pending.extend(zip(self._sequence, items, strict=False))

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._retry)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def never_sent(self) -> int:
        return len(self._pending)

    @property
    def sent_unconfirmed(self) -> int:
        """Published at least once and not confirmed yet (in flight, or waiting to be resent)."""
        return len(self._in_flight) + len(self._retry)

    @property
    def settled(self) -> bool:
        return not self._pending and not self._retry and not self._in_flight

    def can_send(self) -> bool:
        return bool(self._pending or self._retry) and len(self._in_flight) < self.window

    def take(self) -> T:
        """The next message to publish; the caller must publish it on the confirming channel."""
        if self._retry:
            entry = heapq.heappop(self._retry)
            self.counts.republished += 1  # counted when sent again, not when lined up
        else:
            entry = self._pending.popleft()
            self.counts.published += 1
        self._in_flight[self._next_tag] = entry
        self._next_tag += 1
        return entry[1]

    def _release(self, tag: int, multiple: bool) -> list[tuple[int, T]]:
        if not multiple:
            entry = self._in_flight.pop(tag, None)
            return [] if entry is None else [entry]
        released = []
        while self._in_flight and next(iter(self._in_flight)) <= tag:
            released.append(self._in_flight.popitem(last=False)[1])
        return released

    def _resend(self, entries: list[tuple[int, T]]) -> None:
        for entry in entries:
            heapq.heappush(self._retry, entry)

    def ack(self, tag: int, multiple: bool) -> int:
        n = len(self._release(tag, multiple))
        self.counts.confirmed += n
        return n

    def nack(self, tag: int, multiple: bool) -> int:
        """The broker could not take these: send them again."""
        entries = self._release(tag, multiple)
        self._resend(entries)
        self.counts.nacked += len(entries)
        return len(entries)

    def requeue_unconfirmed(self) -> int:
        entries = list(self._in_flight.values())
        self._in_flight.clear()
        self._resend(entries)
        self._next_tag = 1
        return len(entries)
