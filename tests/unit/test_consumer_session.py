"""ConsumerSession on a fake pika: set-up, acks only after the sink flushed, a failing sink."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pika
import pika.exceptions
import pytest
from pika import spec

from logcast import consuming
from logcast.consuming import Consumer, ConsumerSession
from logcast.errors import AccessRefusedError, ExitCode, LogcastError, StorageError
from logcast.history_stream import HistoryCursor, declare_arguments
from logcast.service_main import ServiceContext
from logcast.settings import ReceiverSettings
from logcast.wire_format import ReceivedLog
from tests.unit.fakes import (
    HISTORY_NODE_DOWN,
    HISTORY_QUEUE,
    SERVER_QUEUE,
    Event,
    FakeBroker,
    FakeChannel,
    FakeIOLoop,
    QuickStop,
    answer_position_check,
    bring_up_consumer,
    bring_up_history_consumer,
    isolate_settings_env,
    make_settings,
    stream_properties,
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


# ---- history mode: reading the stream from a HistoryCursor ----------------------------------
STREAM_DECLARE = declare_arguments("24h", 1024**3)


class HistoryRig(Rig):
    """A Rig whose Consumer reads the history stream from ``cursor``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cursor: HistoryCursor) -> None:
        super().__init__(monkeypatch)
        self.cursor = cursor
        self.consumer = RecordingConsumer(
            self.consumer.settings,
            ServiceContext("test", self.stop),
            self.sink,
            cursor=cursor,
            connect=self.broker,
        )


def history_cursor(start: Any = "first", **values: Any) -> HistoryCursor:
    return HistoryCursor(queue=HISTORY_QUEUE, start=start, declare=STREAM_DECLARE, **values)


def never_rejected(rig: Rig) -> None:
    assert rig.broker.names("basic_reject", "basic_nack") == []


def attached_at(channel: FakeChannel) -> Any:
    """The x-stream-offset of the channel's one consumer."""
    (arguments,) = channel.consume_arguments.values()
    assert arguments is not None
    return arguments["x-stream-offset"]


@pytest.mark.parametrize(("start", "attach"), [("first", "first"), ("next", "next"), (17, 17)])
def test_a_found_stream_is_consumed_on_the_main_channel_from_the_cursor(
    monkeypatch: pytest.MonkeyPatch, start: Any, attach: Any
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor(start))
    set_up: list[Event] = []

    def script() -> None:
        connection = rig.broker.latest
        channel = bring_up_history_consumer(connection)
        set_up.extend(
            rig.broker.names("channel", "basic_qos", "queue_declare", "channel.close", "queue_bind")
        )
        probe = connection.channels[1]
        assert probe.is_closed  # the look-up channel is let go
        assert channel.is_open
        assert channel.consume_arguments == {"ctag1.1": {"x-stream-offset": attach}}
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert set_up == [
        ("channel", 1),
        ("basic_qos", 4),
        ("channel", 2),
        ("queue_declare", HISTORY_QUEUE, False),  # passive, on the probe
        ("channel.close", 2),
    ]  # found: not declared, and not bound (whoever declared it bound it)
    assert rig.broker.names("basic_consume")[0] == (
        "basic_consume",
        HISTORY_QUEUE,
        False,
        "ctag1.1",
    )
    assert len(rig.broker.connections) == 1
    never_rejected(rig)


def test_a_datetime_start_attaches_with_a_utc_timestamp(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    rig = HistoryRig(monkeypatch, history_cursor(start))

    def script() -> None:
        channel = bring_up_history_consumer(rig.broker.latest)
        attach = attached_at(channel)
        assert attach == start
        assert attach.utcoffset() == timedelta(0)
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()


def test_a_missing_stream_is_declared_durable_bound_and_consumed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("first"))

    def script() -> None:
        connection = rig.broker.latest
        channel = bring_up_history_consumer(connection, stream=404)
        assert connection.channels[1].is_closed
        assert channel.is_open  # a 404 on the probe does not cost the session its channel
        declared = channel.declares[-1]
        assert declared["queue"] == HISTORY_QUEUE
        assert declared["durable"] is True
        assert declared["passive"] is False
        assert declared["exclusive"] is False
        assert declared["arguments"] == STREAM_DECLARE
        assert channel.consume_arguments == {"ctag1.1": {"x-stream-offset": "first"}}
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert rig.broker.names(
        "channel.closed_by_broker", "queue_declare", "queue_bind", "basic_consume"
    )[:5] == [
        ("queue_declare", HISTORY_QUEUE, False),  # the probe
        ("channel.closed_by_broker", 404),
        ("queue_declare", HISTORY_QUEUE, False),  # the main channel
        ("queue_bind", HISTORY_QUEUE, "logs"),
        ("basic_consume", HISTORY_QUEUE, False, "ctag1.1"),
    ]
    assert len(rig.broker.connections) == 1
    never_rejected(rig)


def test_a_stream_declared_afresh_is_read_from_its_start_whatever_the_position(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("next", position=41, position_id="m41"))

    def script() -> None:
        channel = bring_up_history_consumer(rig.broker.latest, stream=404)
        attach = attached_at(channel)
        rig.stop_cleanly(channel)
        assert attach == "first"

    rig.loop.scripts.append(script)
    rig.consumer.run()


def test_deliveries_advance_the_position_and_are_written_then_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("first"))

    def script() -> None:
        channel = bring_up_history_consumer(rig.broker.latest)
        for offset, text in [(0, "zero"), (1, "one"), (5, "five")]:
            channel.deliver(text.encode(), stream_properties(offset, message_id=f"id{offset}"))
            assert rig.cursor.position == offset
            assert rig.cursor.position_id == f"id{offset}"
        rig.loop.run_timers(max_delay=0)
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert [(log.text, log.offset) for log in rig.sink.written] == [
        ("zero", 0),
        ("one", 1),
        ("five", 5),
    ]
    assert rig.broker.names("basic_ack") == [("basic_ack", 2, True), ("basic_ack", 3, True)]
    assert (rig.cursor.position, rig.cursor.skipped) == (5, 0)
    never_rejected(rig)


def test_a_delivery_at_or_below_the_position_is_acked_but_not_written_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("first"))

    def script() -> None:
        channel = bring_up_history_consumer(rig.broker.latest)
        channel.deliver(b"foreign", stream_properties(10))
        channel.deliver(b"logcast", stream_properties(11, publisher="p", seq=1))
        channel.deliver(b"logcast", stream_properties(11, publisher="p", seq=1))  # again
        channel.deliver(b"foreign", stream_properties(10))  # again
        rig.loop.run_timers(max_delay=0)
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert [log.text for log in rig.sink.written] == ["foreign", "logcast"]
    assert rig.broker.names("basic_ack") == [("basic_ack", 2, True), ("basic_ack", 4, True)]
    assert rig.cursor.skipped == 1  # the foreign line: it has no number to tell it by
    assert rig.consumer.counts.duplicates == 1  # the logcast line: told by its number
    assert (rig.consumer.counts.received, rig.consumer.counts.written) == (4, 2)
    never_rejected(rig)


def test_after_a_rewind_new_logcast_numbers_are_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offsets start over in a stream deleted and declared again: what is new goes out."""
    rig = HistoryRig(monkeypatch, history_cursor("first"))

    def script() -> None:
        channel = bring_up_history_consumer(rig.broker.latest)
        channel.deliver(b"old", stream_properties(500, publisher="p", seq=9))
        channel.deliver(b"new", stream_properties(0, publisher="p", seq=10))
        channel.deliver(b"newer", stream_properties(1, publisher="p", seq=11))
        rig.loop.run_timers(max_delay=0)
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert [log.text for log in rig.sink.written] == ["old", "new", "newer"]
    assert [log.offset for log in rig.sink.written] == [500, 0, 1]
    assert rig.cursor.position == 1
    assert rig.cursor.skipped == 0
    never_rejected(rig)


def test_deliveries_sent_before_since_are_skipped_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    since_ms = 1_796_112_000_000
    rig = HistoryRig(monkeypatch, history_cursor("first", since_ms=since_ms))

    def script() -> None:
        channel = bring_up_history_consumer(rig.broker.latest)
        channel.deliver(b"long ago", stream_properties(0, time_ms=since_ms - 60_000))
        channel.deliver(b"just before", stream_properties(1, time_ms=since_ms - 1))
        channel.deliver(b"exactly then", stream_properties(2, time_ms=since_ms))
        channel.deliver(b"no time", stream_properties(3))  # unknown time: shown
        channel.deliver(b"after", stream_properties(4, time_ms=since_ms + 1))
        rig.loop.run_timers(max_delay=0)
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert [log.text for log in rig.sink.written] == ["exactly then", "no time", "after"]
    assert rig.cursor.skipped == 2
    assert rig.cursor.position == 4  # skipped deliveries move the position on too
    assert rig.broker.names("basic_ack")[-1] == ("basic_ack", 5, True)
    never_rejected(rig)


def test_a_publishers_resend_in_the_stream_is_written_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("first"))

    def script() -> None:
        channel = bring_up_history_consumer(rig.broker.latest)
        channel.deliver(b"a", stream_properties(0, publisher="p", seq=1))
        channel.deliver(b"b", stream_properties(1, publisher="p", seq=2))
        channel.deliver(b"b", stream_properties(2, publisher="p", seq=2))  # resent
        rig.loop.run_timers(max_delay=0)
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert [log.text for log in rig.sink.written] == ["a", "b"]
    assert rig.consumer.counts.duplicates == 1
    assert rig.cursor.position == 2
    assert rig.broker.names("basic_ack")[-1] == ("basic_ack", 3, True)
    never_rejected(rig)


def test_after_a_reconnect_the_stream_is_read_from_just_after_the_position(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("first"))

    def first_connection() -> None:
        channel = bring_up_history_consumer(rig.broker.latest)
        assert channel.consume_arguments == {"ctag1.1": {"x-stream-offset": "first"}}
        for offset in range(3):
            channel.deliver(
                f"m{offset}".encode(), stream_properties(offset, message_id=f"m{offset}")
            )
        rig.broker.latest.terminate(pika.exceptions.StreamLostError("Transport indicated EOF"))

    def second_connection() -> None:
        connection = rig.broker.latest
        channel = bring_up_history_consumer(connection, checks_position=True)
        probe = answer_position_check(connection, offset=2, message_id="m2")
        assert probe.is_closed
        assert probe.consume_arguments == {"ctag3.1": {"x-stream-offset": 2}}
        assert channel.consume_arguments == {"ctag1.1": {"x-stream-offset": 3}}
        channel.deliver(b"m3", stream_properties(3, message_id="m3"))
        rig.loop.run_timers(max_delay=0)
        rig.stop_cleanly(channel)

    rig.loop.scripts.extend([first_connection, second_connection])
    rig.consumer.run()

    assert len(rig.broker.connections) == 2
    assert [log.text for log in rig.sink.written] == ["m0", "m1", "m2", "m3"]
    assert rig.cursor.position == 3
    assert ("basic_qos", 1) in rig.broker.events  # the check reads one delivery at most
    never_rejected(rig)


@pytest.mark.parametrize(
    ("held", "message_id", "attach", "position"),
    [
        (41, "m41", 42, 41),  # the stream holds it: carry on just after it
        (60, "m60", 42, 41),  # retention removed it: the broker attaches at its oldest
        (41, "other", "first", None),  # another message there: declared again, and refilled
        (7, "m7", "first", None),  # the stream ends before it: declared again
    ],
    ids=["held", "truncated", "other-message", "shorter"],
)
def test_a_position_is_read_back_before_attaching_after_it(
    monkeypatch: pytest.MonkeyPatch, held: int, message_id: str, attach: Any, position: int | None
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("next", position=41, position_id="m41"))

    def script() -> None:
        connection = rig.broker.latest
        channel = bring_up_history_consumer(connection, checks_position=True)
        answer_position_check(connection, offset=held, message_id=message_id)
        assert attached_at(channel) == attach
        assert rig.cursor.position == position
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert rig.broker.names("basic_ack") == []  # the probe's delivery is let go, not acked
    assert rig.sink.written == []  # nor written
    never_rejected(rig)


def test_a_position_in_an_empty_stream_is_given_up_after_the_check_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("next", position=41, position_id="m41"))

    def script() -> None:
        connection = rig.broker.latest
        channel = bring_up_history_consumer(connection, checks_position=True)
        probe = answer_position_check(connection)  # nothing there
        assert not channel.consumers
        rig.loop.run_timers(max_delay=consuming.POSITION_CHECK_SECONDS)
        assert probe.is_closed
        assert attached_at(channel) == "first"
        assert rig.cursor.position is None
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()


def test_a_refused_stream_lookup_is_an_access_error_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("first"))
    text = "ACCESS_REFUSED - access to queue 'logs.history' in vhost '/' refused"

    def script() -> None:
        channel = bring_up_history_consumer(rig.broker.latest, stream=403, text=text)
        assert channel.consumers == {}

    rig.loop.scripts.append(script)
    with pytest.raises(AccessRefusedError) as raised:
        rig.consumer.run()
    assert raised.value.exit_code == ExitCode.ACCESS_REFUSED
    assert "ACCESS_REFUSED" in str(raised.value)
    assert len(rig.broker.connections) == 1


@pytest.mark.parametrize(
    ("code", "text"),
    [(404, HISTORY_NODE_DOWN)],  # it exists, but its node is starting: not to be declared
    ids=["node-down"],
)
def test_a_probe_closed_for_another_reason_restarts_the_session(
    monkeypatch: pytest.MonkeyPatch, code: int, text: str
) -> None:
    rig = HistoryRig(monkeypatch, history_cursor("first"))

    def first_connection() -> None:
        connection = rig.broker.latest
        channel = bring_up_history_consumer(connection, stream=code, text=text)
        assert channel.consumers == {}
        assert channel.declares == []  # not declared
        assert connection.is_closed

    def second_connection() -> None:
        channel = bring_up_history_consumer(rig.broker.latest)
        rig.stop_cleanly(channel)

    rig.loop.scripts.extend([first_connection, second_connection])
    rig.consumer.run()

    assert len(rig.broker.connections) == 2
    assert rig.broker.names("queue_bind") == []
    assert rig.broker.names("basic_consume")[0] == (
        "basic_consume",
        HISTORY_QUEUE,
        False,
        "ctag1.1",
    )


def test_the_stream_tail_is_sampled_on_a_throwaway_channel_for_the_lag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consuming, "REBIND_SECONDS", 0.0)
    rig = HistoryRig(monkeypatch, history_cursor("first"))

    def script() -> None:
        connection = rig.broker.latest
        channel = bring_up_history_consumer(connection)
        channel.deliver(b"m0", stream_properties(0))
        rig.loop.run_timers(max_delay=0)  # flush and ack
        assert rig.cursor.lag == 0  # the tail is not known yet
        rig.loop.run_timers()  # housekeeping
        tail_probe = connection.channels[-1]
        assert tail_probe.channel_number == 3
        tail_probe.open()
        assert tail_probe.consume_arguments == {"ctag3.1": {"x-stream-offset": "last"}}
        tail_probe.deliver(b"the newest", stream_properties(57))
        assert tail_probe.is_closed  # let go without an ack or a reject
        assert rig.cursor.tail == 57
        assert rig.cursor.lag == 57
        assert channel.is_open
        rig.stop_cleanly(channel)

    rig.loop.scripts.append(script)
    rig.consumer.run()

    assert [log.text for log in rig.sink.written] == ["m0"]  # the sample is not written
    assert rig.cursor.position == 0
    assert ("basic_qos", 1) in rig.broker.events
    assert rig.broker.names("basic_ack") == [("basic_ack", 1, True)]
    assert rig.broker.names("queue_bind") == []  # no live-queue rebind in history mode
    never_rejected(rig)
