"""The receivers' side: one long-lived Consumer, and a ConsumerSession per connection.

Live mode (the tutorial's): each session declares a fresh exclusive server-named queue (bounded
in bytes, dropping its oldest lines when full) and binds it. History mode (``--since``,
``--resume``): each session reads the history stream from the consumer's HistoryCursor. Either
way it acks in batches once the sink has flushed what it received, and never rejects (a stream
closes the connection on a reject). The Consumer's SequenceTracker counts what was missed across
queues and reconnects, and drops the duplicates a publisher's resend puts in a stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pika
from pika.adapters.select_connection import IOLoop

from logcast import diagnostics, pika_internals
from logcast.amqp_session import (
    AmqpSession,
    BrokerNodes,
    Connect,
    effective_urls,
    run_with_reconnect,
)
from logcast.errors import AccessRefusedError, InternalError, LogcastError
from logcast.health import HealthBeacon
from logcast.history_stream import (
    OFFSET_HEADER,
    HistoryCursor,
    missing_queue,
    on_throwaway_channel,
)
from logcast.loss_accounting import Gap, SequenceTracker
from logcast.metrics import Kind, Sample, session_samples
from logcast.pika_internals.fast_delivery import FastDeliveryReader
from logcast.service_main import ServiceContext
from logcast.settings import ReceiverSettings
from logcast.wire_format import UNKNOWN, ReceivedLog, decode_delivery


class LogSink(Protocol):
    """Where a receiver puts messages. ``flush`` makes them safe; only then are they acked."""

    def write(self, log: ReceivedLog) -> None: ...

    def flush(self) -> None: ...

    def tick(self) -> None: ...


# How long a stream has to hand back our position before we take it that it does not hold it.
POSITION_CHECK_SECONDS = 2.0
# The binding is asserted again this often: it is idempotent and cheap, and it brings back a
# receiver whose exchange was deleted and declared again (which drops every binding).
REBIND_SECONDS = 5.0


@dataclass
class ReceiveCounts:
    received: int = 0  # deliveries, duplicates included
    written: int = 0  # handed to the sink (every new message)
    duplicates: int = 0  # seen before (a publisher's resend): acked, not written again
    backlog: int = 0  # messages ready in the live queue, as last sampled


class ConsumerSession(AmqpSession):
    """Declare, bind and consume a server-named exclusive queue; ack after the sink flushed."""

    def __init__(self, consumer: Consumer, *, connect: Connect) -> None:
        super().__init__(consumer, connect=connect)
        self.receiver_settings = consumer.settings
        self.sink = consumer.sink
        self.health = consumer.health
        self.tracker = consumer.tracker
        self.counts = consumer.counts
        self.cursor = consumer.cursor
        self._consumer = consumer
        self._fast_decode = consumer.settings.fast_decode and pika_internals.enabled()
        self.queue: str | None = None
        self._consumer_tag: str | None = None
        self._last_tag = 0
        self._unacked = 0
        self._flush_scheduled = False
        self._next_rebind = 0.0
        self._tail_probe: Any = None
        self._rewound_seen = False
        # Ack well before the prefetch window is exhausted so the broker never stalls.
        self._ack_every = max(1, consumer.settings.prefetch // 2)

    def on_exchange_ready(self) -> None:
        self.channel.add_on_cancel_callback(self._on_cancelled_by_broker)
        self.channel.basic_qos(
            prefetch_count=self.receiver_settings.prefetch, callback=self._on_qos
        )

    def _on_qos(self, _frame: Any) -> None:
        if self.cursor is not None:
            self._find_stream(self.cursor)
            return
        arguments: dict[str, Any] = {}
        if self.receiver_settings.queue_max_bytes:
            # A stuck or slow receiver loses its own oldest lines, never the broker's memory.
            arguments["x-max-length-bytes"] = self.receiver_settings.queue_max_bytes
            arguments["x-overflow"] = "drop-head"
        self.channel.queue_declare(
            queue="", exclusive=True, arguments=arguments, callback=self._on_queue_declared
        )

    def _on_queue_declared(self, frame: Any) -> None:
        self.queue = frame.method.queue
        self.channel.queue_bind(
            queue=self.queue, exchange=self.settings.exchange, callback=self._on_bound
        )

    def _on_bound(self, _frame: Any) -> None:
        self._start_consuming({})

    # ---- history mode ----------------------------------------------------------------------
    def _find_stream(self, cursor: HistoryCursor) -> None:
        """Look the stream up on a throwaway channel: a missing queue closes the channel."""

        def found_or_not(found: bool, reason: Any) -> None:
            if self.channel is None or self._closing:
                return
            if found:
                self.queue = cursor.queue
                if cursor.position is None:
                    self._start_consuming({OFFSET_HEADER: cursor.attach_at()})
                else:
                    self._check_position(cursor)
            elif missing_queue(reason):
                self._declare_stream(cursor)
            elif getattr(reason, "reply_code", 0) == 403:
                text = getattr(reason, "reply_text", str(reason))
                self.fail(AccessRefusedError(f"broker refused an operation: {text}"))
            else:
                self.restart(f"cannot look up {cursor.queue}: {reason}")

        on_throwaway_channel(
            self.connection,
            lambda probe, ok: probe.queue_declare(cursor.queue, passive=True, callback=ok),
            found_or_not,
        )

    def _check_position(self, cursor: HistoryCursor) -> None:
        """Read our position back on a throwaway channel before attaching after it. An attach
        beyond the end waits for offsets the stream may never reach (a stream deleted and
        declared again starts over at 0), so a position the stream does not hold is not used."""
        seen: dict[str, Any] = {}

        def on_open(probe: Any) -> None:
            probe.add_on_close_callback(on_closed)
            probe.basic_qos(prefetch_count=1)
            probe.basic_consume(
                cursor.queue, on_delivery, arguments={OFFSET_HEADER: cursor.position}
            )
            self.ioloop.call_later(POSITION_CHECK_SECONDS, lambda: probe.is_open and probe.close())

        def on_delivery(probe: Any, _method: Any, properties: Any, _body: bytes) -> None:
            seen["offset"] = (properties.headers or {}).get(OFFSET_HEADER)
            seen["id"] = properties.message_id
            if probe.is_open:
                probe.close()

        def on_closed(_probe: Any, _reason: Any) -> None:
            if self.channel is None or self._closing:
                return
            self._start_consuming({OFFSET_HEADER: self._attach_after_check(cursor, seen)})

        self.connection.channel(on_open_callback=on_open)

    def _attach_after_check(self, cursor: HistoryCursor, seen: dict[str, Any]) -> Any:
        offset, message_id = seen.get("offset"), seen.get("id")
        if isinstance(message_id, bytes):
            message_id = message_id.decode("utf-8", "replace")
        if offset == cursor.position and (message_id or UNKNOWN) == cursor.position_id:
            return cursor.attach_at()
        if isinstance(offset, int) and offset > (cursor.position or 0):
            # Retention removed it: the broker attaches at the oldest it has; the publishers'
            # numbers show what went missing.
            self.log.warning("history.truncated", position=cursor.position, oldest=offset)
            return cursor.attach_at()
        self.log.warning(
            "history.reset",
            position=cursor.position,
            found=offset,
            hint="the stream does not hold our position (deleted and declared again?): "
            "reading it from its start; logcast lines already written are recognised by number",
        )
        cursor.position = None
        return "first"

    def _declare_stream(self, cursor: HistoryCursor) -> None:
        """No definitions made it (outside compose): declare it, and bind it, since we made it."""

        def on_bound(_frame: Any) -> None:
            self.log.info("history.declared", queue=cursor.queue, arguments=cursor.declare)
            self.queue = cursor.queue
            # A new stream holds no position of ours: whatever it gets from now on is new.
            attach = cursor.attach_at() if cursor.position is None else "first"
            cursor.position = None
            self._start_consuming({OFFSET_HEADER: attach})

        self.channel.queue_declare(
            cursor.queue,
            durable=True,
            arguments=cursor.declare,
            callback=lambda _frame: self.channel.queue_bind(
                cursor.queue, self.settings.exchange, callback=on_bound
            ),
        )

    def _sample_tail(self, cursor: HistoryCursor) -> None:
        """Read one delivery from the stream's last chunk on a throwaway channel: about where
        the stream ends, for the lag. Closing the channel lets go of it (no reject)."""

        def on_open(probe: Any) -> None:
            self._tail_probe = probe
            probe.add_on_close_callback(lambda _probe, _reason: setattr(self, "_tail_probe", None))
            probe.basic_qos(prefetch_count=1)
            probe.basic_consume(
                cursor.queue, on_delivery, arguments={OFFSET_HEADER: "last"}, auto_ack=False
            )
            # An empty stream delivers nothing: give up on this sample.
            self.ioloop.call_later(2.0, lambda: probe.is_open and probe.close())

        def on_delivery(probe: Any, _method: Any, properties: Any, _body: bytes) -> None:
            offset = (properties.headers or {}).get(OFFSET_HEADER)
            if isinstance(offset, int):
                cursor.tail = offset
            if probe.is_open:
                probe.close()

        self.connection.channel(on_open_callback=on_open)

    def _start_consuming(self, arguments: dict[str, Any]) -> None:
        self._consumer_tag = self.channel.basic_consume(
            self.queue, self._on_message, auto_ack=False, arguments=arguments
        )
        if self._fast_decode:
            channel = self.channel
            FastDeliveryReader(
                self.connection,
                channel.channel_number,
                self._consumer_tag,
                lambda method, properties, body: self._on_message(
                    channel, method, properties, body
                ),
            ).install()
        self.ready = True
        # A stream's tail is sampled at once: a resume's lag shows while it catches up.
        self._next_rebind = time.monotonic() + (REBIND_SECONDS if self.cursor is None else 0.0)
        self.health.up(self.queue or "")
        attach = arguments.get(OFFSET_HEADER)
        if isinstance(attach, datetime):
            attach = attach.isoformat()
        self.log.info(
            "ready",
            queue=self.queue,
            exchange=self.settings.exchange,
            **({} if attach is None else {"attach": attach}),
        )

    def _on_backlog_sampled(self, frame: Any) -> None:
        self.counts.backlog = frame.method.message_count

    def _on_cancelled_by_broker(self, _frame: Any) -> None:
        """The queue was deleted, or the broker cancelled us: start over with a fresh queue."""
        self.log.warning(
            "receiver.consumer_cancelled",
            queue=self.queue,
            hint="queue deleted or consumer cancelled by the broker; declaring a fresh queue",
        )
        self.health.down()
        self._flush_and_ack()
        self.restart("consumer cancelled by the broker")

    def _on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        if self._fatal is not None:
            return  # failing: nothing more is written or acked
        try:
            cursor = self.cursor
            offset = None
            rewound = False
            if cursor is not None:
                offset = _stream_offset(properties)
                rewound = cursor.position is not None and offset <= cursor.position
                if rewound:
                    self._rewound(cursor, offset)
                cursor.position = offset
            log = decode_delivery(properties, body, time.time_ns() // 1_000_000, offset=offset)
            if cursor is not None:
                cursor.position_id = log.message_id
            self.counts.received += 1
            if cursor is not None and (
                (rewound and log.publisher is None) or _before(log.sent_ms, cursor.since_ms)
            ):
                # Seen before, or not asked for; a logcast publisher's lines are told apart by
                # their numbers instead, so a stream that was deleted and declared again loses
                # nothing (offsets start over at 0 there).
                cursor.skipped += 1
            elif log.publisher is not None and not self._is_new(log.publisher, log.seq or 0):
                self.counts.duplicates += 1
            else:
                self.sink.write(log)
                self.counts.written += 1
        except LogcastError as error:
            self.fail(error)
            return
        except Exception:
            # pika would turn this into a lost connection and we would loop; it is a bug: stop.
            self.log.exception("receiver.bug", delivery_tag=method.delivery_tag)
            self.fail(InternalError("unexpected error while handling a message (see log)"))
            return
        self._last_tag = method.delivery_tag
        self._unacked += 1
        if self._unacked >= self._ack_every:
            self._flush_and_ack()
        elif not self._flush_scheduled:
            # Runs after pika has dispatched every delivery decoded from this read.
            self._flush_scheduled = True
            self.ioloop.call_later(0, self._flush_and_ack)

    def _rewound(self, cursor: HistoryCursor, offset: int) -> None:
        if not self._rewound_seen:
            self._rewound_seen = True
            self.log.warning(
                "history.rewound",
                position=cursor.position,
                offset=offset,
                hint="the stream delivered an offset at or below our position: it was deleted "
                "and declared again, or redelivered; logcast lines are deduplicated by number",
            )

    def _is_new(self, publisher: str, seq: int) -> bool:
        new, gaps = self.tracker.observe(publisher, seq, time.monotonic())
        if gaps:
            self._consumer.report(gaps)
        return new

    def _flush_and_ack(self) -> None:
        self._flush_scheduled = False
        if not self._unacked or self.channel is None or not self.channel.is_open:
            return
        try:
            self.sink.flush()
        except LogcastError as error:
            self._unacked = 0  # never acked, and not flushed again on the way out
            self.fail(error)
            return
        self.channel.basic_ack(self._last_tag, multiple=True)
        self._unacked = 0

    def on_stop_requested(self) -> None:
        self.log.info("stopping", queue=self.queue, received=self.counts.received)
        channel = self.channel
        if channel is not None and channel.is_open and self._consumer_tag in channel.consumer_tags:
            channel.basic_cancel(self._consumer_tag, callback=self._on_cancelled)
        else:
            # pika's basic_cancel returns without calling back for a consumer it no longer has.
            self._flush_and_ack()
            self.close()

    def _on_cancelled(self, _frame: Any) -> None:
        self._flush_and_ack()
        self.close()

    def on_tick(self) -> None:
        now = time.monotonic()
        if self.ready:
            self.health.beat()
            if now >= self._next_rebind and not self._closing and self.channel is not None:
                self._next_rebind = now + REBIND_SECONDS
                if self.cursor is None:
                    self.channel.queue_bind(queue=self.queue, exchange=self.settings.exchange)
                    self.channel.queue_declare(
                        queue=self.queue, passive=True, callback=self._on_backlog_sampled
                    )
                elif self._tail_probe is None:
                    self._sample_tail(self.cursor)
        self._tick_sink(now)

    def _tick_sink(self, now: float) -> None:
        gaps = self.tracker.settle_due(now)
        if gaps:
            self._consumer.report(gaps)
        try:
            self.sink.tick()
        except LogcastError as error:
            self.fail(error)

    def on_disconnected(self) -> None:
        self.health.down()
        if self._unacked:
            # The queue died with the connection; what was received is still written out.
            try:
                self.sink.flush()
            except LogcastError as error:
                self._fatal = self._fatal or error
            self._unacked = 0
        if self.ready and not self._closing:
            self.log.warning("amqp.unbound", queue=self.queue)


def _stream_offset(properties: Any) -> int:
    headers = properties.headers
    offset = headers.get(OFFSET_HEADER) if isinstance(headers, dict) else None
    if not isinstance(offset, int):
        raise InternalError(f"a stream delivery came without {OFFSET_HEADER}")
    return offset


def _before(sent_ms: int | None, since_ms: int | None) -> bool:
    return since_ms is not None and sent_ms is not None and sent_ms < since_ms


class Consumer:
    """Consumes into a sink until stopped: a fresh live queue after every reconnect, or the
    history stream from where the cursor is."""

    def __init__(
        self,
        settings: ReceiverSettings,
        context: ServiceContext,
        sink: LogSink,
        *,
        cursor: HistoryCursor | None = None,
        connect: Connect = pika.SelectConnection,
    ) -> None:
        self.settings = settings
        self.context = context
        self.sink = sink
        self.cursor = cursor
        self.health = HealthBeacon(settings.health_file)
        self.ioloop = IOLoop()
        self.nodes = BrokerNodes(effective_urls(settings))
        self.tracker = SequenceTracker()
        self.counts = ReceiveCounts()
        self._connect = connect
        self._sessions = 0
        self._session: ConsumerSession | None = None
        context.metrics.add(self.samples)

    def _new_session(self) -> ConsumerSession:
        self._sessions += 1
        self._session = ConsumerSession(self, connect=self._connect)
        return self._session

    def samples(self) -> list[Sample]:
        """For the metrics endpoint (read from its thread: plain int reads)."""
        counts, loss, session = self.counts, self.tracker.counts, self._session
        return [
            Sample("received", Kind.COUNTER, "Deliveries, duplicates included", counts.received),
            Sample("written", Kind.COUNTER, "Messages handed to the output", counts.written),
            Sample(
                "duplicates",
                Kind.COUNTER,
                "Repeats of a publisher's number, not written",
                counts.duplicates,
            ),
            Sample(
                "missed",
                Kind.COUNTER,
                "Publisher numbers that never arrived (net of late)",
                loss.missed,
            ),
            Sample("late", Kind.COUNTER, "Arrived after being counted as missed", loss.late),
            Sample(
                "queue_backlog",
                Kind.GAUGE,
                "Ready messages in the live queue (sampled every 5 s)",
                counts.backlog,
            ),
            *session_samples(self._sessions, bool(session and session.ready)),
            *self._history_samples(),
        ]

    def _history_samples(self) -> list[Sample]:
        cursor = self.cursor
        if cursor is None:
            return []
        return [
            Sample(
                "history_position",
                Kind.GAUGE,
                "Stream offset of the last delivery handed to the output (-1: none yet)",
                -1 if cursor.position is None else cursor.position,
            ),
            Sample(
                "history_lag",
                Kind.GAUGE,
                "Stream offsets from the position to the stream's last chunk (sampled every 5 s)",
                cursor.lag,
            ),
            Sample(
                "history_skipped",
                Kind.COUNTER,
                "Stream deliveries before the start time, or foreign ones seen before: not written",
                cursor.skipped,
            ),
        ]

    def run(self) -> None:
        try:
            run_with_reconnect(self._new_session, self.settings, self.context.stop, self.nodes)
        finally:
            self.health.down()
            self.ioloop.close()
            self.report(self.tracker.settle_due(float("inf")))
            loss = self.tracker.counts
            history = {} if self.cursor is None else {"position": self.cursor.position}
            diagnostics.get_logger().info(
                "receiver.done",
                **history,
                received=self.counts.received,
                written=self.counts.written,
                duplicates=self.counts.duplicates,
                missed=loss.missed,
                late=loss.late,
            )

    def report(self, gaps: list[Gap]) -> None:
        log = diagnostics.get_logger()
        for gap in gaps:
            log.warning(
                "receiver.missed",
                publisher=gap.publisher,
                first=gap.first,
                last=gap.last,
                count=gap.count,
                missed_total=self.tracker.counts.missed,
            )
