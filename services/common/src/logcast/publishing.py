"""The publishing side: one long-lived Publisher, and a PublisherSession per connection.

The Publisher owns what outlives a connection: the confirm ledger (pipelined confirms, in-order
resend after a lost channel), the feed from the reader thread, the encoder and the I/O loop.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import pika.spec
from pika.adapters.select_connection import IOLoop

from logcast import diagnostics, pika_internals
from logcast.amqp_session import (
    AmqpSession,
    BrokerNodes,
    Connect,
    effective_urls,
    run_with_reconnect,
)
from logcast.confirm_ledger import ConfirmLedger, PublishCounts
from logcast.errors import InternalError, LogcastError, UsageError
from logcast.health import HealthBeacon
from logcast.history_stream import bind_history, history_queue
from logcast.levels import Level
from logcast.metrics import Kind, Sample, session_samples
from logcast.pika_internals.fast_publish import FramePublisher
from logcast.service_main import ServiceContext
from logcast.settings import PublisherSettings
from logcast.wire_format import MessageEncoder, OutboundMessage

DRAIN_SECONDS = 1.5
# A history stream that exists but is not available yet (its node is starting) is waited for
# this long before lines go to live queues only; a broker restart takes well under a second.
HISTORY_WAIT_SECONDS = 30.0
HISTORY_RETRY_SECONDS = 0.2
_FEED_BATCHES = 64

# What a source yields: batches of (text, level), each batch as soon as it is read.
LineBatches = Iterable[list[tuple[str, Level]]]


class Feed(Protocol):
    """Where a Publisher takes messages from: MessageFeed (a reader thread), or the logging
    handler's bounded buffer."""

    exhausted: bool  # the source has ended and everything was taken
    dropped: int  # made but never handed over
    error: LogcastError | None

    def drain(self, limit: int) -> list[OutboundMessage]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PublishReport:
    counts: PublishCounts
    unconfirmed: int  # published, never confirmed: the broker may or may not have them
    unsent: int  # taken from the input but never published (stopped or failed first)
    error: LogcastError | None


class MessageFeed:
    """Hands batches from a reader thread (stdin, demo) to the I/O loop, with back-pressure."""

    def __init__(self, wake: Callable[[], None]) -> None:
        # None marks the end of input.
        self._queue: queue.Queue[list[OutboundMessage] | None] = queue.Queue(maxsize=_FEED_BATCHES)
        self._wake = wake
        self._closed = False  # publishing has ended: nothing more can be handed over
        self.exhausted = False
        self.dropped = 0  # messages made from the input but never handed over (stopped first)
        self.error: LogcastError | None = None  # the input failed; what was read is still sent

    def close(self) -> None:
        self._closed = True

    def _put(self, item: list[OutboundMessage] | None) -> bool:
        # A stop ends the reading (the source checks it), not the hand-over: what was read
        # is still published while the session drains.
        while not self._closed:
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            self._wake()
            return True
        return False

    def produce(self, batches: Iterable[list[OutboundMessage]]) -> None:
        """Reader thread body: every batch, then the end marker (unless stopped first)."""
        try:
            iterator = iter(batches)
            for batch in iterator:
                if batch and not self._put(batch):
                    # Publishing ended: what the source already read is counted as unsent.
                    self.dropped += len(batch) + sum(len(rest) for rest in iterator)
                    return
        except OSError as error:
            self.error = UsageError(f"cannot read the input: {error.strerror or error}")
        except Exception:
            diagnostics.get_logger().exception("emitter.input_failed")
            self.error = InternalError("reading the input failed (see log)")
        self._put(None)

    def drain(self, limit: int) -> list[OutboundMessage]:
        """What is queued now, up to about ``limit`` messages; never waits."""
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
    """One connection of a Publisher: confirm mode, publish what the ledger allows, settle."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        connect: Connect,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(publisher, connect=connect)
        self.ledger = publisher.ledger
        self.feed = publisher.feed
        self.health = publisher.health
        self.publisher_id = publisher.encoder.publisher_id
        self.owner_drain_seconds = publisher.drain_seconds
        self._clock = clock
        self._drain_deadline: float | None = None
        self._publish: Callable[[bytes, Any], None] = lambda _body, _properties: None
        self._history = "unknown"
        self._history_since = 0.0

    def on_exchange_ready(self) -> None:
        # The exchange is transient: after a broker restart it comes back without the history
        # stream's binding, and what we published before binding it again would be confirmed
        # yet never reach the history. So it is bound first, every session.
        self._history_since = self._clock()
        bind_history(self.connection, self.settings.exchange, self._on_history_bound)

    def _bind_history_again(self) -> None:
        if not self._closing and self.connection is not None and self.connection.is_open:
            bind_history(self.connection, self.settings.exchange, self._on_history_bound)

    def _on_history_bound(self, outcome: str) -> None:
        if self._closing or self.channel is None or not self.channel.is_open:
            return
        if (
            outcome == "unavailable"
            and self._clock() - self._history_since < HISTORY_WAIT_SECONDS
            and not self.stop.requested
        ):
            self.ioloop.call_later(HISTORY_RETRY_SECONDS, self._bind_history_again)
            return
        self._history = outcome
        if outcome in ("refused", "failed", "unavailable"):
            self.log.warning(
                "history.not_bound",
                queue=history_queue(self.settings.exchange),
                outcome=outcome,
                hint="lines reach live receivers but not the history stream (refused: the "
                "emitter needs write on the stream and read on the exchange)",
            )
        channel = self.channel
        exchange = self.settings.exchange
        if pika_internals.enabled():
            self._publish = FramePublisher(channel, exchange, mandatory=True).publish
        else:
            self._publish = lambda body, properties: channel.basic_publish(
                exchange, "", body, properties, mandatory=True
            )
        self.channel.add_on_return_callback(self._on_return)
        self.channel.confirm_delivery(self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame: Any) -> None:
        self.ready = True
        self.health.up("connected")
        self.log.info(
            "ready",
            exchange=self.settings.exchange,
            publisher=self.publisher_id,
            resend=self.ledger.pending,
            history=self._history,
        )
        self.pump()

    def pump(self) -> None:
        """Publish everything queued that the window allows, at once: nothing waits for a batch."""
        if not self.ready or self._closing or self.channel is None or not self.channel.is_open:
            return
        if self.ledger.pending < self.ledger.window:
            self.ledger.add(self.feed.drain(self.ledger.window))
        publish = self._publish
        while self.ledger.can_send():
            message = self.ledger.take()
            publish(message.body, message.properties)
        if self.ledger.settled and self.feed.exhausted:
            self.close()  # at a stop too: the source ends, and what it read is published first

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
        self._drain_deadline = self._clock() + self.owner_drain_seconds
        self.pump()

    def on_tick(self) -> None:
        if self.ready:
            self.health.beat()
        if self._drain_deadline is not None and self._clock() > self._drain_deadline:
            self.close()

    def on_disconnected(self) -> None:
        self.health.down()
        if self.ended_on_purpose:
            return  # what is still in flight stays counted as unconfirmed
        resend = self.ledger.requeue_unconfirmed()
        if resend:
            self.log.warning("emitter.republishing", count=resend)


class Publisher:
    """Publishes every line from a source, across reconnects; the reader thread wakes it."""

    def __init__(
        self,
        settings: PublisherSettings,
        context: ServiceContext,
        *,
        app_id: str,
        host: str | None = None,
        connect: Connect = pika.SelectConnection,
        encoder: MessageEncoder | None = None,
        feed: Callable[[Callable[[], None]], Feed] = MessageFeed,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self.settings = settings
        self.context = context
        # Built first, so that an app id or host that cannot fit fails before any connection.
        self.encoder = encoder or MessageEncoder(
            host or socket.gethostname(), app_id, preencoded=pika_internals.enabled()
        )
        self.ledger: ConfirmLedger[OutboundMessage] = ConfirmLedger(settings.confirm_window)
        self.feed = feed(self.wake)
        self.drain_seconds = drain_seconds  # after a stop, at most this long for confirms
        self.health = HealthBeacon(settings.health_file)
        self.ioloop = IOLoop()
        self.nodes = BrokerNodes(effective_urls(settings))
        self._connect = connect
        self._session: PublisherSession | None = None
        self._sessions = 0
        self._wake_pending = False
        context.metrics.add(self.samples)

    def wake(self) -> None:
        """From the reader thread: new lines are queued. At most one wake-up is in flight."""
        if not self._wake_pending:
            self._wake_pending = True
            self.ioloop.add_callback_threadsafe(self._on_wake)

    def _on_wake(self) -> None:
        self._wake_pending = False  # cleared before draining, so a later put wakes us again
        if self._session is not None:
            self._session.pump()

    def _new_session(self) -> PublisherSession:
        self._sessions += 1
        self._session = PublisherSession(self, connect=self._connect)
        return self._session

    @property
    def connected(self) -> bool:
        """True while a publishing session is up (read from any thread)."""
        session = self._session
        return bool(session is not None and session.ready)

    def samples(self) -> list[Sample]:
        """For the metrics endpoint (read from its thread: plain int reads)."""
        counts = self.ledger.counts
        return [
            Sample("published", Kind.COUNTER, "Messages published (first sends)", counts.published),
            Sample(
                "republished",
                Kind.COUNTER,
                "Re-sends after a nack or lost link",
                counts.republished,
            ),
            Sample("confirmed", Kind.COUNTER, "Messages the broker confirmed", counts.confirmed),
            Sample("nacked", Kind.COUNTER, "Messages the broker nacked", counts.nacked),
            Sample("unroutable", Kind.COUNTER, "Returned: no queue was bound", counts.unroutable),
            Sample("in_flight", Kind.GAUGE, "Published, awaiting a confirm", self.ledger.in_flight),
            *session_samples(self._sessions, self.connected),
        ]

    def _encoded(self, batches: LineBatches) -> Iterable[list[OutboundMessage]]:
        encode = self.encoder.encode
        for batch in batches:
            yield [encode(text, level) for text, level in batch]

    def run(self, batches: LineBatches) -> PublishReport:
        """Publish every line of ``batches``; report counts even when the broker was lost."""
        assert isinstance(self.feed, MessageFeed)
        reader = threading.Thread(
            target=self.feed.produce, args=(self._encoded(batches),), name="feed", daemon=True
        )
        reader.start()
        error = self._publish()
        # The reader leaves a blocked put, and a stop-aware source its wait for input, in 0.1 s.
        reader.join(timeout=1.0)
        return self.report(error)

    def run_feed(self) -> PublishReport:
        """Publish what the feed hands over until it is exhausted or a stop; then report."""
        return self.report(self._publish())

    def _publish(self) -> LogcastError | None:
        try:
            run_with_reconnect(self._new_session, self.settings, self.context.stop, self.nodes)
        except LogcastError as error:
            return error
        finally:
            self.context.stop.request()  # the source stops reading
            self.feed.close()  # and a reader blocked on a full feed lets go
            self.health.down()
            self.ioloop.close()
        return None

    def report(self, error: LogcastError | None) -> PublishReport:
        unsent = self.ledger.never_sent + len(self.feed.drain(2**31)) + self.feed.dropped
        return PublishReport(
            self.ledger.counts, self.ledger.sent_unconfirmed, unsent, error or self.feed.error
        )
