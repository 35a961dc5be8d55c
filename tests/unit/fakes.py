"""A fake pika for driving sessions in unit tests: connection, channel and I/O loop.

Nothing here touches a socket. The fakes record what the session asks of pika, in one ordered
event log shared by every connection and channel of a ``FakeBroker``, and let the test fire the
callbacks pika would fire (connection open, channel open, declare-ok frames, deliveries,
publisher confirms, closes). ``FakeIOLoop.start()`` runs a script the test provides instead of
polling; the script must end with the I/O loop stopped, as pika's ``start()`` only returns then.

The fakes follow pika 1.4's shape where sessions depend on it: method signatures, closed
channels refusing calls, and on a closed connection its channels' close callbacks firing
(with the connection's reason) before the connection's own.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import pika
import pika.exceptions
import pytest
from pika import frame, spec

from logcast.settings import CommonSettings
from logcast.shutdown import StopSignal

Event = tuple[Any, ...]
Script = Callable[[], None]
Callback = Callable[..., Any]
SettingsT = TypeVar("SettingsT", bound=CommonSettings)

AMQP_URL = "amqp://alice:s3cret-pw@broker.test:5672/%2F"
REDACTED_URL = "amqp://alice:***@broker.test:5672/%2F"
SERVER_QUEUE = "amq.gen-x"


def isolate_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in a test see no LOGCAST_* variable of the machine, and no secrets dir."""
    for key in list(os.environ):
        if key.startswith("LOGCAST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LOGCAST_SECRETS_DIR", "/nonexistent")


def make_settings(cls: type[SettingsT], **values: Any) -> SettingsT:
    """Settings from keyword arguments, on AMQP_URL unless given; see isolate_settings_env."""
    return cls(**{"amqp_url": AMQP_URL, **values})


class QuickStop(StopSignal):
    """A StopSignal whose backoff waits are recorded, then cut to ``cap`` seconds."""

    def __init__(self, cap: float = 0.0) -> None:
        super().__init__()
        self.cap = cap
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.cap > 0:
            super().sleep(min(seconds, self.cap))


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---- I/O loop -----------------------------------------------------------------------------------
class FakeTimer:
    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay = delay
        self.callback = callback
        self.cancelled = False


class FakeIOLoop:
    """pika's IOLoop as sessions use it; ``start()`` runs the next script instead of polling."""

    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()  # one per start(), in order
        self.every_start: Script | None = None  # when ``scripts`` has run out
        self.starts = 0
        self.stopped = False
        self.closed = False
        self.timers: list[FakeTimer] = []
        self._threadsafe: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._woken = threading.Event()

    # ---- what pika offers --------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(delay, callback)
        self.timers.append(timer)
        return timer

    def remove_timeout(self, timer: FakeTimer) -> None:
        timer.cancelled = True
        if timer in self.timers:
            self.timers.remove(timer)

    def add_callback_threadsafe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._threadsafe.append(callback)
            self._woken.set()

    def start(self) -> None:
        assert not self.closed, "start() on a closed I/O loop"
        if self.scripts:
            script = self.scripts.popleft()
        elif self.every_start is not None:
            script = self.every_start
        else:
            raise AssertionError(f"unexpected ioloop.start() #{self.starts + 1}: no script left")
        self.starts += 1
        self.stopped = False
        script()
        if not self.stopped:
            raise AssertionError("the script returned but nothing stopped the I/O loop")

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.closed = True

    # ---- driving it from a test --------------------------------------------------------------
    def run_timers(self, max_delay: float = math.inf) -> int:
        """Fire the timers set now (not those they set) with ``delay <= max_delay``, in order."""
        due = [timer for timer in self.timers if timer.delay <= max_delay]
        for timer in due:
            self.timers.remove(timer)
        for timer in due:
            if not timer.cancelled:
                timer.callback()
        return len(due)

    def run_threadsafe(self, timeout: float = 2.0) -> int:
        """Wait until another thread added a callback, then run every one added so far."""
        if not self._woken.wait(timeout):
            raise AssertionError(f"no add_callback_threadsafe() within {timeout}s")
        with self._lock:
            callbacks, self._threadsafe = self._threadsafe, []
            self._woken.clear()
        for callback in callbacks:
            callback()
        return len(callbacks)

    def run_threadsafe_until(self, done: Callable[[], bool], timeout: float = 2.0) -> None:
        """Run threadsafe callbacks as they come until ``done()``."""
        while not done():
            self.run_threadsafe(timeout)


# ---- broker side: connections and channels -------------------------------------------------
class FakeBroker:
    """The ``connect`` callable sessions are given: makes and remembers FakeConnections."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.connections: list[FakeConnection] = []

    def __call__(
        self,
        parameters: Any,
        *,
        on_open_callback: Callback,
        on_open_error_callback: Callback,
        on_close_callback: Callback,
        custom_ioloop: Any,
    ) -> FakeConnection:
        assert isinstance(parameters, pika.URLParameters)
        connection = FakeConnection(
            self,
            parameters,
            on_open_callback=on_open_callback,
            on_open_error_callback=on_open_error_callback,
            on_close_callback=on_close_callback,
            ioloop=custom_ioloop,
        )
        self.connections.append(connection)
        self.events.append(("connect", len(self.connections)))
        return connection

    @property
    def latest(self) -> FakeConnection:
        assert self.connections, "no connection was made"
        return self.connections[-1]

    def names(self, *names: str) -> list[Event]:
        """The events with one of these names, in order."""
        return [event for event in self.events if event[0] in names]


class _States:
    """pika's is_open / is_closing / is_closed, read off ``state`` (the fake channels close
    at once, so they never report closing)."""

    state: str

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def is_closing(self) -> bool:
        return self.state == "closing"

    @property
    def is_closed(self) -> bool:
        return self.state == "closed"


class FakeConnection(_States):
    def __init__(
        self,
        broker: FakeBroker,
        parameters: Any,
        *,
        on_open_callback: Callback,
        on_open_error_callback: Callback,
        on_close_callback: Callback,
        ioloop: Any,
    ) -> None:
        self.broker = broker
        self.events = broker.events
        self.parameters = parameters
        self.ioloop = ioloop
        self._on_open = on_open_callback
        self._on_open_error = on_open_error_callback
        self._on_close = on_close_callback
        self.state = "opening"  # opening -> open -> closing -> closed
        self.opened = False
        self.channels: list[FakeChannel] = []
        self.close_reason: BaseException | None = None

    # ---- what pika offers --------------------------------------------------------------------
    def channel(
        self, channel_number: int | None = None, on_open_callback: Callback | None = None
    ) -> FakeChannel:
        assert self.is_open, f"channel() on a connection that is {self.state}"
        assert on_open_callback is not None
        channel = FakeChannel(self, channel_number or len(self.channels) + 1, on_open_callback)
        self.channels.append(channel)
        self.events.append(("channel", channel.channel_number))
        return channel

    def close(self, reply_code: int = 200, reply_text: str = "Normal shutdown") -> None:
        self.events.append(("connection.close",))
        if self.state in ("closing", "closed"):
            raise pika.exceptions.ConnectionWrongStateError(f"close() while {self.state}")
        if self.state == "opening":
            self.terminate(pika.exceptions.ConnectionOpenAborted("closed while opening"))
            return
        self.state = "closing"
        for channel in self.channels:
            if not channel.is_closed:
                channel.closed_by(pika.exceptions.ChannelClosedByClient(reply_code, reply_text))
        self.terminate(pika.exceptions.ConnectionClosedByClient(reply_code, reply_text))

    # ---- what the broker (the test) does -----------------------------------------------------
    def open(self) -> None:
        assert self.state == "opening"
        self.state = "open"
        self.opened = True
        self._on_open(self)

    def terminate(self, reason: BaseException) -> None:
        """The stack is gone (as pika's ``_on_stream_terminated``): channels first, then us.

        Before the connection opened this is an open error, afterwards a close.
        """
        assert self.state != "closed", "terminate() on a closed connection"
        self.state = "closed"
        self.close_reason = reason
        for channel in self.channels:
            if not channel.is_closed:
                channel.closed_by(reason)
        if self.opened:
            self._on_close(self, reason)
        else:
            self._on_open_error(self, reason)

    def fail_open(self, error: BaseException) -> None:
        assert not self.opened
        self.terminate(error)

    @property
    def channel_(self) -> FakeChannel:
        """The session's channel: the first one (others are throwaway probes)."""
        assert self.channels, "no channel"
        return self.channels[0]


_REPLIES: dict[str, Callable[[], Any]] = {
    "exchange_declare": spec.Exchange.DeclareOk,
    "basic_qos": spec.Basic.QosOk,
    "queue_declare": lambda: spec.Queue.DeclareOk(queue=SERVER_QUEUE),
    "queue_bind": spec.Queue.BindOk,
    "confirm_delivery": spec.Confirm.SelectOk,
    "basic_cancel": spec.Basic.CancelOk,
}


class FakeChannel(_States):
    def __init__(self, connection: FakeConnection, number: int, on_open: Callback) -> None:
        self.connection = connection
        self.events = connection.events
        self.channel_number = number
        self._on_open = on_open
        self.state = "opening"
        self.close_callbacks: list[Callback] = []
        self.return_callbacks: list[Callback] = []
        self.cancel_callbacks: list[Callback] = []
        self.queue_arguments: dict[str, Any] | None = None
        # Details the event log leaves out (added for the history stream's tests).
        self.declares: list[dict[str, Any]] = []  # queue_declare: queue, passive, durable, ...
        self.consume_arguments: dict[str, dict[str, Any] | None] = {}  # consumer tag -> arguments
        self.replies: dict[str, Callback] = {}  # method awaiting its -ok -> the caller's callback
        self.consumers: dict[str, Callback] = {}
        self._consumer_tags = itertools.count(1)
        self._delivery_tags = itertools.count(1)
        self.confirming = False
        self._on_confirm: Callback | None = None
        self._publish_tags = itertools.count(1)
        self.published: list[tuple[int | None, bytes]] = []  # (delivery tag, body)
        self._unconfirmed: dict[int, bytes] = {}
        self.confirmed: list[bytes] = []  # bodies, in the order the broker confirmed them
        self.close_reason: BaseException | None = None

    def _call(self, name: str, *details: Any, callback: Callback | None = None) -> None:
        """Record one call; like pika, refuse it on a channel that is not open."""
        self.events.append((name, *details))
        if not self.is_open:
            raise pika.exceptions.ChannelWrongStateError(f"{name} on a {self.state} channel")
        if callback is not None:
            assert name not in self.replies, f"{name} called again before its reply"
            self.replies[name] = callback

    # ---- what pika offers --------------------------------------------------------------------
    def add_on_close_callback(self, callback: Callback) -> None:
        self.close_callbacks.append(callback)

    def close(self, reply_code: int = 200, reply_text: str = "Normal shutdown") -> None:
        self.events.append(("channel.close", self.channel_number))
        if not self.is_open:
            raise pika.exceptions.ChannelWrongStateError(f"close() on a {self.state} channel")
        self.closed_by(pika.exceptions.ChannelClosedByClient(reply_code, reply_text))

    def add_on_cancel_callback(self, callback: Callback) -> None:
        self.cancel_callbacks.append(callback)

    @property
    def consumer_tags(self) -> list[str]:
        return list(self.consumers)

    def add_on_return_callback(self, callback: Callback) -> None:
        self.events.append(("add_on_return_callback",))
        self.return_callbacks.append(callback)

    def exchange_declare(  # noqa: PLR0917 (pika's signature)
        self,
        exchange: str,
        exchange_type: str = "direct",
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
        callback: Callback | None = None,
    ) -> None:
        self._call(
            "exchange_declare", exchange, exchange_type, durable, auto_delete, callback=callback
        )

    def basic_qos(
        self,
        prefetch_size: int = 0,
        prefetch_count: int = 0,
        global_qos: bool = False,
        callback: Callback | None = None,
    ) -> None:
        self._call("basic_qos", prefetch_count, callback=callback)

    def queue_declare(  # noqa: PLR0917 (pika's signature)
        self,
        queue: str,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        callback: Callback | None = None,
    ) -> None:
        self.queue_arguments = arguments
        self.declares.append(
            {
                "queue": queue,
                "passive": passive,
                "durable": durable,
                "exclusive": exclusive,
                "auto_delete": auto_delete,
                "arguments": arguments,
            }
        )
        self._call("queue_declare", queue, exclusive, callback=callback)

    def queue_bind(
        self,
        queue: str,
        exchange: str,
        routing_key: str | None = None,
        arguments: dict[str, Any] | None = None,
        callback: Callback | None = None,
    ) -> None:
        self._call("queue_bind", queue, exchange, callback=callback)

    def basic_consume(  # noqa: PLR0917 (pika's signature)
        self,
        queue: str,
        on_message_callback: Callback,
        auto_ack: bool = False,
        exclusive: bool = False,
        consumer_tag: str | None = None,
        arguments: dict[str, Any] | None = None,
        callback: Callback | None = None,
    ) -> str:
        tag = consumer_tag or f"ctag{self.channel_number}.{next(self._consumer_tags)}"
        self._call("basic_consume", queue, auto_ack, tag)
        self.consumers[tag] = on_message_callback
        self.consume_arguments[tag] = arguments
        return tag

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None:
        self._call("basic_ack", delivery_tag, multiple)

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> None:
        """Recorded, so a test can show a session never rejects (a stream would close on it)."""
        self._call("basic_reject", delivery_tag, requeue)

    def basic_nack(
        self, delivery_tag: int = 0, multiple: bool = False, requeue: bool = True
    ) -> None:
        self._call("basic_nack", delivery_tag, multiple, requeue)

    def basic_cancel(self, consumer_tag: str = "", callback: Callback | None = None) -> None:
        self._call("basic_cancel", consumer_tag, callback=callback)

    def confirm_delivery(
        self, ack_nack_callback: Callback, callback: Callback | None = None
    ) -> None:
        self._call("confirm_delivery", callback=callback)
        self.confirming = True
        self._on_confirm = ack_nack_callback

    def basic_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Any = None,
        mandatory: bool = False,
    ) -> None:
        tag = next(self._publish_tags) if self.confirming else None
        self._call("basic_publish", exchange, routing_key, body, mandatory)
        self.published.append((tag, body))
        if tag is not None:
            self._unconfirmed[tag] = body

    # ---- what the broker (the test) does -----------------------------------------------------
    def cancel_by_broker(self, consumer_tag: str) -> None:
        """basic.cancel from the broker (the queue was deleted): pika drops the consumer and
        calls the cancel callbacks."""
        self.events.append(("broker_cancel", consumer_tag))
        del self.consumers[consumer_tag]
        for callback in list(self.cancel_callbacks):
            callback(frame.Method(self.channel_number, spec.Basic.Cancel(consumer_tag)))

    def open(self) -> None:
        assert self.state == "opening"
        self.state = "open"
        self._on_open(self)

    def reply(self, name: str, method: Any = None) -> None:
        """Answer the pending ``name`` call: its callback gets the -ok frame."""
        assert name in self.replies, f"no {name} awaits a reply (pending: {sorted(self.replies)})"
        callback = self.replies.pop(name)
        callback(frame.Method(self.channel_number, method or _REPLIES[name]()))

    def deliver(self, body: bytes, properties: Any = None) -> int:
        """The broker delivers a message to the (one) consumer; returns its delivery tag."""
        assert self.is_open and len(self.consumers) == 1
        (consumer_tag, on_message), *_ = self.consumers.items()
        tag = next(self._delivery_tags)
        self.events.append(("deliver", tag))
        method = spec.Basic.Deliver(
            consumer_tag=consumer_tag, delivery_tag=tag, exchange="logs", routing_key=""
        )
        on_message(self, method, properties or pika.BasicProperties(), body)
        return tag

    def _settle(self, delivery_tag: int, multiple: bool) -> list[bytes]:
        tags = [t for t in self._unconfirmed if t <= delivery_tag] if multiple else [delivery_tag]
        assert tags and all(t in self._unconfirmed for t in tags), f"nothing to settle: {tags}"
        return [self._unconfirmed.pop(t) for t in sorted(tags)]

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        """A publisher confirm (Basic.Ack) from the broker."""
        assert self._on_confirm is not None and self.is_open
        self.confirmed.extend(self._settle(delivery_tag, multiple))
        self.events.append(("confirm.ack", delivery_tag, multiple))
        self._on_confirm(frame.Method(self.channel_number, spec.Basic.Ack(delivery_tag, multiple)))

    def nack(self, delivery_tag: int, multiple: bool = False) -> None:
        assert self._on_confirm is not None and self.is_open
        self._settle(delivery_tag, multiple)
        self.events.append(("confirm.nack", delivery_tag, multiple))
        self._on_confirm(frame.Method(self.channel_number, spec.Basic.Nack(delivery_tag, multiple)))

    def closed_by(self, reason: BaseException) -> None:
        """The channel is closed (by either side, or with its connection): callbacks fire."""
        assert not self.is_closed
        self.state = "closed"
        self.close_reason = reason
        for callback in self.close_callbacks:
            callback(self, reason)

    def close_by_broker(self, reply_code: int, reply_text: str) -> None:
        self.events.append(("channel.closed_by_broker", reply_code))
        self.closed_by(pika.exceptions.ChannelClosedByBroker(reply_code, reply_text))


# ---- bringing a session up, as a broker would answer it -------------------------------------
def open_channel(connection: FakeConnection) -> FakeChannel:
    """Open the connection and the channel the session asks for; the exchange is not declared."""
    connection.open()
    channel = connection.channel_
    channel.open()
    return channel


def bring_up_consumer(connection: FakeConnection, exchange: str = "logs") -> FakeChannel:
    """Answer a ConsumerSession's set-up until it consumes; returns the channel."""
    channel = open_channel(connection)
    assert ("exchange_declare", exchange, "fanout", False, False) in channel.events
    channel.reply("exchange_declare")
    channel.reply("basic_qos")
    channel.reply("queue_declare")
    channel.reply("queue_bind")
    assert channel.consumers, "the session did not start consuming"
    return channel


def bring_up_publisher(connection: FakeConnection, *, history: int | None = None) -> FakeChannel:
    """Answer a PublisherSession's set-up until confirm mode is on; returns the channel.

    The history stream's binding is answered on its own channel: bound, or closed with the
    reply code ``history`` (404: no stream)."""
    channel = open_channel(connection)
    channel.reply("exchange_declare")
    answer_history_bind(connection, history)
    channel.reply("confirm_delivery")
    return channel


def answer_history_bind(
    connection: FakeConnection, code: int | None = None, *, text: str | None = None
) -> FakeChannel:
    """Answer the history binding on its probe: bound, or closed with ``code`` (and ``text``,
    else "refused" for a 403, the broker's "no queue" text for a 404, "NOT_FOUND" otherwise)."""
    probe = connection.channels[-1]
    assert probe is not connection.channels[0], "the session did not bind the history stream"
    probe.open()
    assert probe.events[-1][:3] == ("queue_bind", "logs.history", "logs"), probe.events[-1]
    if code is None:
        probe.reply("queue_bind")
    else:
        default = {403: "refused", 404: "NOT_FOUND - no queue 'logs.history' in vhost '/'"}
        probe.close_by_broker(code, text or default.get(code, "NOT_FOUND"))
    return probe


# ---- the history stream, as a consumer in history mode meets it ------------------------------
HISTORY_QUEUE = "logs.history"
# The broker's words for a queue that does not exist, and for a stream whose node is not up yet.
NO_HISTORY_QUEUE = "NOT_FOUND - no queue 'logs.history' in vhost '/'"
HISTORY_NODE_DOWN = (
    "NOT_FOUND - home node 'rabbit@broker' of durable queue 'logs.history' in vhost '/' "
    "is down or inaccessible"
)


def bring_up_history_consumer(
    connection: FakeConnection,
    *,
    stream: int | None = None,
    text: str | None = None,
    exchange: str = "logs",
    checks_position: bool = False,
) -> FakeChannel:
    """Answer a history-mode ConsumerSession's set-up until it consumes; returns its channel.

    The stream is looked up on a probe channel: found (``stream`` None), or the probe is closed
    with the reply code ``stream`` and ``text`` (404 with the default text: missing, which the
    session then declares and binds; anything else: the session restarts, and the channel is
    returned as it is). A session with a position reads it back first: with
    ``checks_position`` the channel is returned before that (see answer_position_check)."""
    channel = open_channel(connection)
    channel.reply("exchange_declare")
    channel.reply("basic_qos")
    probe = connection.channels[-1]
    assert probe is not channel, "the session did not look the stream up on a probe channel"
    probe.open()
    assert probe.events[-1] == ("queue_declare", f"{exchange}.history", False), probe.events[-1]
    assert probe.declares[-1]["passive"], probe.declares[-1]
    if stream is None:
        probe.reply("queue_declare")
        if checks_position:
            assert not channel.consumers, "the session attached without checking its position"
            return channel
    else:
        if text is None:
            text = NO_HISTORY_QUEUE if stream == 404 else "ACCESS_REFUSED"
        probe.close_by_broker(stream, text)
        if text != NO_HISTORY_QUEUE:
            return channel  # the session gives up on this connection
        channel.reply("queue_declare")
        channel.reply("queue_bind")
    assert channel.consumers, "the session did not start consuming"
    return channel


def answer_position_check(
    connection: FakeConnection, *, offset: int | None = None, message_id: str | None = None
) -> FakeChannel:
    """Open the probe on which a session reads its position back; deliver what the stream holds
    there (``offset`` and ``message_id``), or nothing (``offset`` None: the test lets the
    session's timer run out). Returns the probe."""
    probe = connection.channels[-1]
    assert probe is not connection.channels[0], "the session did not check its position"
    probe.open()
    assert probe.events[-1][:2] == ("basic_consume", HISTORY_QUEUE), probe.events[-1]
    if offset is not None:
        probe.deliver(b"held there", stream_properties(offset, message_id=message_id))
    return probe


def stream_properties(
    offset: int | None,
    *,
    time_ms: int | None = None,
    publisher: str | None = None,
    seq: int | None = None,
    message_id: str | None = None,
) -> pika.BasicProperties:
    """A stream delivery's properties: the broker's offset header, and a publisher's headers."""
    headers: dict[str, Any] = {}
    if offset is not None:
        headers["x-stream-offset"] = offset
    if time_ms is not None:
        headers["time_ms"] = time_ms
    if publisher is not None:
        headers["publisher"] = publisher
    if seq is not None:
        headers["seq"] = seq
    return pika.BasicProperties(headers=headers, message_id=message_id)
