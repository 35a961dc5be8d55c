"""Bookkeeping for pipelined publisher confirms: what is pending, in flight, and settled."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class PublishCounts:
    published: int = 0
    confirmed: int = 0
    republished: int = 0
    nacked: int = 0
    unroutable: int = 0


class ConfirmLedger(Generic[T]):
    """Messages wait in ``pending``, then sit in flight under their delivery tag until confirmed.

    Delivery tags restart at 1 on every channel; ``requeue_unconfirmed`` is called when a channel
    dies so that its in-flight messages are sent again, first, on the next one.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.counts = PublishCounts()
        self._pending: deque[T] = deque()
        self._in_flight: OrderedDict[int, T] = OrderedDict()
        self._next_tag = 1

    def add(self, items: Iterable[T]) -> None:
        self._pending.extend(items)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def settled(self) -> bool:
        return not self._pending and not self._in_flight

    def can_send(self) -> bool:
        return bool(self._pending) and len(self._in_flight) < self.window

    def take(self) -> T:
        """The next message to publish; the caller must publish it on the confirming channel."""
        item = self._pending.popleft()
        self._in_flight[self._next_tag] = item
        self._next_tag += 1
        self.counts.published += 1
        return item

    def _release(self, tag: int, multiple: bool) -> list[T]:
        if not multiple:
            item = self._in_flight.pop(tag, None)
            return [] if item is None else [item]
        released = []
        while self._in_flight and next(iter(self._in_flight)) <= tag:
            released.append(self._in_flight.popitem(last=False)[1])
        return released

    def ack(self, tag: int, multiple: bool) -> int:
        n = len(self._release(tag, multiple))
        self.counts.confirmed += n
        return n

    def nack(self, tag: int, multiple: bool) -> int:
        """The broker could not take these: send them again, ahead of newer ones."""
        items = self._release(tag, multiple)
        self._pending.extendleft(reversed(items))
        self.counts.nacked += len(items)
        return len(items)

    def requeue_unconfirmed(self) -> int:
        items = list(self._in_flight.values())
        self._in_flight.clear()
        self._pending.extendleft(reversed(items))
        self._next_tag = 1
        self.counts.republished += len(items)
        return len(items)
