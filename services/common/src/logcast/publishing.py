"""The emitter side: pipelined confirms, mandatory routing, republish on reconnect."""

from __future__ import annotations

import itertools
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pika
import pika.spec
import structlog
from pika.adapters.select_connection import IOLoop

from logcast.amqp_session import AmqpSession, run_with_reconnect
from logcast.confirm_ledger import ConfirmLedger, PublishCounts
from logcast.errors import InternalError, LogcastError, UsageError
from logcast.health import HealthBeacon
from logcast.levels import Level
from logcast.settings import CommonSettings
from logcast.shutdown import StopSignal
from logcast.wire_properties import EncodedProperties, PropertiesEncoder

_DRAIN_SECONDS = 1.5
_FEED_BATCHES = 64


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    body: bytes
    properties: pika.BasicProperties


class MessageIds:
    """Unique ids without a urandom call per message: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:20]
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"


def make_message(
    text: str, level: Level, message_id: str, encoder: PropertiesEncoder
) -> OutboundMessage:
    properties = EncodedProperties(encoder.encode(level, message_id, time.time_ns() // 1_000_000))
    return OutboundMessage(body=text.encode("utf-8"), properties=properties)


@dataclass(frozen=True, slots=True)
class PublishReport:
    counts: PublishCounts
    unconfirmed: int  # published, never confirmed: the broker may or may not have them
    unsent: int  # taken from the input but never published (stopped or failed first)
    error: LogcastError | None


class MessageFeed:
    """Hands batches from a producer thread (stdin, demo) to the I/O loop, with back-pressure."""

    def __init__(self, stop: StopSignal) -> None:
        # None marks the end of input.
        self._queue: queue.Queue[list[OutboundMessage] | None] = queue.Queue(maxsize=_FEED_BATCHES)
        self._stop = stop
        self._wake: Callable[[], None] = lambda: None
        self.exhausted = False
        self.error: LogcastError | None = None  # the input failed; what was read is still sent

    def set_waker(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def _put(self, item: list[OutboundMessage] | None) -> bool:
        while not self._stop.requested:
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            self._wake()
            return True
        return False

    def produce(self, batches: Iterable[list[OutboundMessage]]) -> None:
        """Producer thread body: every batch, then the end marker (unless stopped first)."""
        try:
            for batch in batches:
                if batch and not self._put(batch):
                    return
        except OSError as error:
            self.error = UsageError(f"cannot read the input: {error.strerror or error}")
        except Exception:
            structlog.get_logger().exception("emitter.input_failed")
            self.error = InternalError("reading the input failed (see log)")
        self._put(None)

    def drain(self, limit: int) -> list[OutboundMessage]:
        taken: list[OutboundMessage] = []
        while len(taken) < limit and not self.exhausted:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self.exhausted = True
            else:
                taken.extend(item)
        return taken


class PublisherSession(AmqpSession):
    """Publish from the feed with a window of unconfirmed messages; close once all are settled."""

    def __init__(
        self,
        settings: CommonSettings,
        service: str,
        stop: StopSignal,
        ioloop: IOLoop,
        *,
        ledger: ConfirmLedger[OutboundMessage],
        feed: MessageFeed,
        health: HealthBeacon,
    ) -> None:
        super().__init__(settings, service, stop, ioloop)
        self.ledger = ledger
        self.feed = feed
        self.health = health
        self._drain_deadline: float | None = None

    def on_exchange_ready(self) -> None:
        self.channel.add_on_return_callback(self._on_return)
        self.channel.confirm_delivery(self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame: Any) -> None:
        self.ready = True
        self.health.up("connected")
        self.log.info("ready", exchange=self.settings.exchange, resend=self.ledger.pending)
        self.pump()

    def pump(self) -> None:
        if not self.ready or self._closing or self.channel is None or not self.channel.is_open:
            return
        if self.ledger.pending < self.ledger.window:
            self.ledger.add(self.feed.drain(self.ledger.window))
        publish = self.channel.basic_publish
        exchange = self.settings.exchange
        while self.ledger.can_send():
            message = self.ledger.take()
            publish(exchange, "", message.body, message.properties, mandatory=True)
        if self.ledger.settled and (self.feed.exhausted or self.stop.requested):
            self.close()

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Ack):
            self.ledger.ack(method.delivery_tag, method.multiple)
        else:
            self.ledger.nack(method.delivery_tag, method.multiple)
        self.pump()

    def _on_return(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        if self.ledger.counts.unroutable == 0:
            self.log.warning(
                "emitter.unroutable",
                exchange=self.settings.exchange,
                hint="no queue is bound to the exchange; no receiver is running",
            )
        self.ledger.counts.unroutable += 1

    def on_stop_requested(self) -> None:
        self._drain_deadline = time.monotonic() + _DRAIN_SECONDS
        self.pump()

    def on_tick(self) -> None:
        if self.ready:
            self.health.beat()
        if self._drain_deadline is not None and time.monotonic() > self._drain_deadline:
            self.close()

    def on_disconnected(self) -> None:
        self.health.down()
        resend = self.ledger.requeue_unconfirmed()
        if resend and not self._closing:
            self.log.warning("emitter.republishing", count=resend)


def publish_all(
    settings: CommonSettings,
    service: str,
    batches: Iterable[list[OutboundMessage]],
    stop: StopSignal,
    *,
    window: int,
    health: HealthBeacon,
) -> PublishReport:
    """Publish every message from ``batches``; report counts even when the broker was lost."""
    ioloop = IOLoop()
    feed = MessageFeed(stop)
    ledger: ConfirmLedger[OutboundMessage] = ConfirmLedger(window)
    current: list[PublisherSession] = []  # the live session, for wake-ups from the producer

    def pump_current() -> None:
        if current:
            current[0].pump()

    feed.set_waker(lambda: ioloop.add_callback_threadsafe(pump_current))
    producer = threading.Thread(target=feed.produce, args=(batches,), name="feed", daemon=True)
    producer.start()

    def make_session() -> PublisherSession:
        session = PublisherSession(
            settings, service, stop, ioloop, ledger=ledger, feed=feed, health=health
        )
        current[:] = [session]
        return session

    error: LogcastError | None = None
    try:
        run_with_reconnect(make_session, settings, stop)
    except LogcastError as exc:
        error = exc
    finally:
        stop.request()  # releases a producer blocked on a full feed
        ioloop.close()
    unsent = ledger.never_sent + len(feed.drain(2**31))
    return PublishReport(ledger.counts, ledger.sent_unconfirmed, unsent, error or feed.error)
