"""ConsumerSession on a fake pika: set-up, acks only after the sink flushed, a failing sink."""

from __future__ import annotations

from typing import Any

import pika
import pytest
from pika import spec

from logcast import consuming
from logcast.consuming import Consumer, ConsumerSession
from logcast.errors import ExitCode, LogcastError, StorageError
from logcast.service_main import ServiceContext
from logcast.settings import ReceiverSettings
from logcast.wire_format import ReceivedLog
from tests.unit.fakes import (
    SERVER_QUEUE,
    Event,
    FakeBroker,
    FakeChannel,
    FakeIOLoop,
    QuickStop,
    bring_up_consumer,
    isolate_settings_env,
    make_settings,
)


class RecordingSink:
    """A LogSink that logs into the broker's event log, so its calls and pika's share one order."""

    def __init__(self, events: list[Event], flush_error: LogcastError | None = None) -> None:
        self.events = events
        self.flush_error = flush_error
        self.written: list[ReceivedLog] = []
        self.flushes = 0

    def write(self, log: ReceivedLog) -> None:
        self.events.append(("sink.write", log.text))
        self.written.append(log)

    def flush(self) -> None:
        self.flushes += 1
        self.events.append(("sink.flush",))
        if self.flush_error is not None:
            raise self.flush_error
        self.events.append(("sink.flushed",))  # flush() has returned

    def tick(self) -> None:
        pass


class RecordingConsumer(Consumer):
    """Remembers the sessions it made, so a test can reach the one running."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[ConsumerSession] = []

    def _new_session(self) -> ConsumerSession:
        session = super()._new_session()
        self.sessions.append(session)
        return session


class Rig:
    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, *, flush_error: LogcastError | None = None
    ) -> None:
        isolate_settings_env(monkeypatch)
        self.loop = FakeIOLoop()
        monkeypatch.setattr(consuming, "IOLoop", lambda: self.loop)
        self.broker = FakeBroker()
        self.stop = QuickStop()
        self.sink = RecordingSink(self.broker.events, flush_error)
        settings = make_settings(
            ReceiverSettings,
            fast_decode=False,
            prefetch=4,  # acks every 2 messages
            retry_timeout=0.05,
        )
        self.consumer = RecordingConsumer(
            settings, ServiceContext("test", self.stop), self.sink, connect=self.broker
        )

    def stop_cleanly(self, channel: FakeChannel) -> None:
        """SIGTERM: the next housekeeping tick cancels the consumer; the broker confirms."""
        self.stop.request()
        self.loop.run_timers()
        channel.reply("basic_cancel")


def test_session_declares_binds_and_consumes_the_server_named_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        channel = bring_up_consumer(rig.broker.latest)
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert rig.broker.names("basic_qos", "queue_declare", "queue_bind", "basic_consume") == [
        ("basic_qos", 4),
        ("queue_declare", "", True),
        ("queue_bind", SERVER_QUEUE, "logs"),
        ("basic_consume", SERVER_QUEUE, False, "ctag1.1"),
    ]
    assert rig.broker.names("basic_cancel", "connection.close") == [
        ("basic_cancel", "ctag1.1"),
        ("connection.close",),
    ]
    assert rig.loop.closed


def test_acks_follow_the_sink_flush_with_multiple_and_the_last_tag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        channel = bring_up_consumer(rig.broker.latest)
        channel.deliver(b"one")
        channel.deliver(b"two")  # the ack threshold (prefetch // 2): flush and ack at once
        channel.deliver(b"three")  # below it: flushed and acked from a zero-delay timer
        assert ("basic_ack", 3, True) not in rig.broker.events
        rig.loop.run_timers(max_delay=0)
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert [log.text for log in rig.sink.written] == ["one", "two", "three"]
    assert rig.broker.names("sink.write", "sink.flush", "sink.flushed", "basic_ack") == [
        ("sink.write", "one"),
        ("sink.write", "two"),
        ("sink.flush",),
        ("sink.flushed",),
        ("basic_ack", 2, True),
        ("sink.write", "three"),
        ("sink.flush",),
        ("sink.flushed",),
        ("basic_ack", 3, True),
    ]
    # Nothing left to flush when stopping: no further flush, no further ack.
    assert rig.sink.flushes == 2


def test_deliveries_in_flight_at_a_stop_are_flushed_and_acked_on_cancel_ok(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        channel = bring_up_consumer(rig.broker.latest)
        rig.stop.request()
        rig.loop.run_timers()  # housekeeping: basic_cancel
        channel.deliver(b"in flight")  # sent by the broker before it saw the cancel
        channel.reply("basic_cancel")

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert rig.broker.names(
        "basic_cancel", "deliver", "sink.flush", "sink.flushed", "basic_ack", "connection.close"
    ) == [
        ("basic_cancel", "ctag1.1"),
        ("deliver", 1),
        ("sink.flush",),
        ("sink.flushed",),
        ("basic_ack", 1, True),
        ("connection.close",),
    ]


@pytest.mark.parametrize("path", ["threshold", "timer"])
def test_a_failing_flush_acks_nothing_and_ends_with_the_storage_error(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    rig = Rig(monkeypatch, flush_error=StorageError("cannot write logs.jsonl: disk full"))

    def script() -> None:
        channel = bring_up_consumer(rig.broker.latest)
        channel.deliver(b"one")
        if path == "threshold":
            channel.deliver(b"two")
        else:
            rig.loop.run_timers(max_delay=0)
        assert rig.broker.latest.is_closed, "the session did not close after the flush failed"

    rig.loop.scripts.append(script)
    with pytest.raises(StorageError) as raised:
        rig.consumer.run()

    assert raised.value.exit_code is ExitCode.STORAGE
    assert int(raised.value.exit_code) == 5
    assert rig.broker.names("basic_ack") == []
    assert rig.broker.names("connection.close") == [("connection.close",)]
    assert len(rig.broker.connections) == 1  # a storage error is not retried
    assert rig.stop.sleeps == []
    assert rig.loop.closed


def test_deliveries_after_a_failed_flush_are_neither_written_nor_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pika may hand over more deliveries decoded from the same read after the failure."""
    rig = Rig(monkeypatch, flush_error=StorageError("disk full"))

    def script() -> None:
        channel = bring_up_consumer(rig.broker.latest)
        channel.deliver(b"one")
        channel.deliver(b"two")  # the flush fails here and the session closes
        later = spec.Basic.Deliver(consumer_tag="ctag1.1", delivery_tag=3)
        rig.consumer.sessions[-1]._on_message(channel, later, pika.BasicProperties(), b"three")
        rig.loop.run_timers(max_delay=0)

    rig.loop.scripts.append(script)
    with pytest.raises(StorageError):
        rig.consumer.run()

    assert [log.text for log in rig.sink.written] == ["one", "two"]
    assert rig.broker.names("basic_ack") == []
