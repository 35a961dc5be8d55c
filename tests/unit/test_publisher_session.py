"""PublisherSession on a fake pika: the drain deadline at a stop, in-order resend after a loss."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pika.exceptions
import pytest

from logcast import publishing
from logcast.levels import Level
from logcast.publishing import (
    DRAIN_SECONDS,
    HISTORY_RETRY_SECONDS,
    HISTORY_WAIT_SECONDS,
    LineBatches,
    Publisher,
    PublisherSession,
)
from logcast.service_main import ServiceContext
from logcast.settings import PublisherSettings
from tests.unit.fakes import (
    HISTORY_NODE_DOWN,
    NO_HISTORY_QUEUE,
    FakeBroker,
    FakeClock,
    FakeIOLoop,
    QuickStop,
    answer_history_bind,
    bring_up_publisher,
    isolate_settings_env,
    make_settings,
    open_channel,
)


class ClockedPublisher(Publisher):
    """A Publisher whose sessions read the test's clock, and which remembers its sessions."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.sessions: list[PublisherSession] = []

    def _new_session(self) -> PublisherSession:
        self._session = PublisherSession(self, connect=self._connect, clock=self.clock)
        self.sessions.append(self._session)
        return self._session


class Rig:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, confirm_window: int = 1000) -> None:
        isolate_settings_env(monkeypatch)
        self.loop = FakeIOLoop()
        monkeypatch.setattr(publishing, "IOLoop", lambda: self.loop)
        self.broker = FakeBroker()
        self.stop = QuickStop()
        self.clock = FakeClock(1000.0)
        settings = make_settings(
            PublisherSettings,
            retry_timeout=0.05,
            confirm_window=confirm_window,
        )
        self.publisher = ClockedPublisher(
            settings,
            ServiceContext("test", self.stop),
            app_id="test",
            host="testhost",
            connect=self.broker,
            clock=self.clock,
        )


def lines(*texts: str) -> list[tuple[str, Level]]:
    return [(text, Level.INFO) for text in texts]


def bodies(*texts: str) -> list[bytes]:
    return [text.encode() for text in texts]


def published(channel_bodies: list[tuple[int | None, bytes]]) -> list[bytes]:
    return [body for _tag, body in channel_bodies]


def gated(
    first: list[tuple[str, Level]], gate: threading.Event, then: list[tuple[str, Level]]
) -> LineBatches:
    """The input: one batch now, then (maybe) another once the test opens the gate, then its end.

    Until the gate opens the input stays open, as stdin would.
    """

    def batches() -> Iterator[list[tuple[str, Level]]]:
        yield first
        if gate.wait(timeout=5):
            yield then

    return batches()


def test_publishes_to_the_exchange_mandatory_with_confirms_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        channel = bring_up_publisher(rig.broker.latest)
        rig.loop.run_threadsafe()  # the reader thread queued the lines
        assert published(channel.published) == bodies("a", "b")
        channel.ack(2, multiple=True)  # all settled and the input ended: the session closes
        rig.loop.run_threadsafe_until(lambda: rig.broker.latest.is_closed)

    rig.loop.scripts.append(script)
    report = rig.publisher.run([lines("a", "b")])

    assert rig.broker.names("add_on_return_callback", "confirm_delivery", "basic_publish") == [
        ("add_on_return_callback",),
        ("confirm_delivery",),
        ("basic_publish", "logs", "", b"a", True),
        ("basic_publish", "logs", "", b"b", True),
    ]
    assert (report.counts.published, report.counts.confirmed) == (2, 2)
    assert (report.unconfirmed, report.unsent, report.error) == (0, 0, None)


def test_a_stop_waits_for_confirms_until_the_drain_deadline_then_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)
    texts = ("m0", "m1", "m2", "m3", "m4")

    def script() -> None:
        connection = rig.broker.latest
        channel = bring_up_publisher(connection)
        rig.loop.run_threadsafe()
        assert published(channel.published) == bodies(*texts)
        channel.ack(2, multiple=True)  # m0, m1 confirmed; m2..m4 stay unconfirmed

        rig.stop.request()
        rig.loop.run_timers()  # housekeeping sees the stop: on_stop_requested
        deadline = 1000.0 + DRAIN_SECONDS
        assert rig.publisher.sessions[-1]._drain_deadline == deadline
        assert not connection.is_closed

        rig.clock.now = deadline - 0.01
        rig.loop.run_timers()  # a tick before the deadline
        assert rig.broker.names("connection.close") == []
        assert connection.is_open

        rig.clock.now = deadline + 0.01
        rig.loop.run_timers()  # a tick after it
        assert rig.broker.names("connection.close") == [("connection.close",)]
        gate.set()  # the input ends only now: what closed the session was the deadline

    gate = threading.Event()
    rig.loop.scripts.append(script)
    report = rig.publisher.run(gated(lines(*texts), gate, []))

    assert report.counts.published == 5
    assert report.counts.confirmed == 2
    assert report.unconfirmed == 3  # published, fate unknown
    assert report.unsent == 0
    assert report.counts.republished == 0
    assert rig.publisher.ledger.in_flight == 3  # a close on purpose does not line them up again
    assert report.error is None
    assert len(rig.broker.connections) == 1


def test_a_stop_publishes_what_was_read_then_closes_at_the_last_confirm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stop ends the reading, not the publishing: lines already read still go out."""
    rig = Rig(monkeypatch)

    def script() -> None:
        channel = bring_up_publisher(rig.broker.latest)
        rig.loop.run_threadsafe()
        rig.stop.request()
        rig.loop.run_timers()
        channel.ack(3, multiple=True)  # the input has not ended: the session stays
        assert rig.broker.names("connection.close") == []
        gate.set()  # the source hands over what it had read, then ends
        rig.loop.run_threadsafe_until(lambda: len(channel.published) == 4)
        assert rig.broker.names("connection.close") == []
        channel.ack(4, multiple=False)
        rig.loop.run_threadsafe_until(lambda: rig.publisher.feed.exhausted)
        assert rig.broker.names("connection.close") == [("connection.close",)]

    gate = threading.Event()
    rig.loop.scripts.append(script)
    report = rig.publisher.run(gated(lines("a", "b", "c"), gate, lines("d")))

    assert (report.counts.confirmed, report.unconfirmed, report.unsent) == (4, 0, 0)


def test_a_stop_before_the_session_is_ready_aborts_the_connection_without_a_drain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        connection = rig.broker.latest
        connection.open()  # the channel is never opened
        rig.loop.run_threadsafe()
        rig.stop.request()
        rig.loop.run_timers()  # the first tick after the stop closes: nothing is in flight
        assert rig.broker.names("connection.close") == [("connection.close",)]
        assert rig.publisher.sessions[-1]._drain_deadline is None
        gate.set()

    gate = threading.Event()
    rig.loop.scripts.append(script)
    report = rig.publisher.run(gated(lines("a", "b"), gate, []))

    assert (report.counts.published, report.unconfirmed, report.unsent) == (0, 0, 2)
    assert rig.broker.names("basic_publish") == []


@pytest.mark.parametrize(
    "loss",
    [
        pika.exceptions.StreamLostError("Transport indicated EOF"),
        pika.exceptions.ConnectionClosedByBroker(
            320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
        ),
    ],
    ids=["stream-lost", "connection-forced"],
)
def test_after_a_lost_connection_the_unconfirmed_go_first_in_order_each_confirmed_once(
    monkeypatch: pytest.MonkeyPatch, loss: BaseException
) -> None:
    rig = Rig(monkeypatch)
    gate = threading.Event()

    def first_connection() -> None:
        channel = bring_up_publisher(rig.broker.latest)
        rig.loop.run_threadsafe()
        assert published(channel.published) == bodies("m0", "m1", "m2", "m3", "m4")
        channel.ack(2, multiple=True)
        rig.broker.latest.terminate(loss)

    def second_connection() -> None:
        connection = rig.broker.latest
        channel = bring_up_publisher(connection)  # confirm mode on: the resend starts at once
        assert channel.published == [(1, b"m2"), (2, b"m3"), (3, b"m4")]
        gate.set()
        rig.loop.run_threadsafe()  # the new lines
        assert published(channel.published) == bodies("m2", "m3", "m4", "n0", "n1")
        channel.ack(1)
        channel.ack(5, multiple=True)
        rig.loop.run_threadsafe_until(lambda: connection.is_closed)  # input ended: closes

    rig.loop.scripts.extend([first_connection, second_connection])
    report = rig.publisher.run(gated(lines("m0", "m1", "m2", "m3", "m4"), gate, lines("n0", "n1")))

    first, second = (connection.channel_ for connection in rig.broker.connections)
    confirmed = first.confirmed + second.confirmed
    assert confirmed == bodies("m0", "m1", "m2", "m3", "m4", "n0", "n1")
    assert set(Counter(confirmed).values()) == {1}
    assert report.counts.confirmed == 7
    assert report.counts.republished == 3
    assert report.counts.published == 7  # first sends: 5 + 2 new; the 3 again are republished
    assert (report.unconfirmed, report.unsent, report.error) == (0, 0, None)
    assert rig.stop.sleeps == []  # a session that was ready reconnects without a backoff wait


def test_a_nacked_message_is_sent_again_before_newer_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(monkeypatch, confirm_window=2)

    def script() -> None:
        channel = bring_up_publisher(rig.broker.latest)
        rig.loop.run_threadsafe()
        assert channel.published == [(1, b"a"), (2, b"b")]  # the window is full
        channel.nack(1)
        assert channel.published[-1] == (3, b"a")
        channel.ack(3, multiple=True)  # b and the resent a
        channel.ack(4)
        rig.loop.run_threadsafe_until(lambda: rig.broker.latest.is_closed)

    rig.loop.scripts.append(script)
    report = rig.publisher.run([lines("a", "b", "c")])

    assert published(rig.broker.latest.channel_.published) == bodies("a", "b", "a", "c")
    assert (report.counts.confirmed, report.counts.nacked, report.counts.republished) == (3, 1, 1)


def test_after_a_channel_closed_by_the_broker_the_unconfirmed_are_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def first_connection() -> None:
        channel = bring_up_publisher(rig.broker.latest)
        rig.loop.run_threadsafe()
        channel.ack(2, multiple=True)
        # e.g. the exchange was deleted under a running emitter
        channel.close_by_broker(404, "NOT_FOUND - no exchange 'logs' in vhost '/'")

    def second_connection() -> None:
        channel = bring_up_publisher(rig.broker.latest)
        assert channel.published == [(1, b"m2"), (2, b"m3"), (3, b"m4")]
        channel.ack(3, multiple=True)
        rig.loop.run_threadsafe_until(lambda: rig.broker.latest.is_closed)

    rig.loop.scripts.extend([first_connection, second_connection])
    report = rig.publisher.run([lines("m0", "m1", "m2", "m3", "m4")])

    assert (report.counts.confirmed, report.counts.republished) == (5, 3)


# ---- the history stream's binding, before confirm mode -----------------------------------------
def test_the_history_stream_is_bound_before_confirm_mode_and_any_publish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        connection = rig.broker.latest
        channel = open_channel(connection)
        channel.reply("exchange_declare")
        rig.loop.run_threadsafe()  # the lines are queued, and wait for the binding
        assert rig.broker.names("confirm_delivery", "basic_publish") == []
        probe = answer_history_bind(connection)
        assert probe.channel_number == 2
        assert probe.is_closed  # the throwaway channel is let go
        channel.reply("confirm_delivery")
        assert published(channel.published) == bodies("a", "b")
        assert probe.published == []
        channel.ack(2, multiple=True)
        rig.loop.run_threadsafe_until(lambda: connection.is_closed)

    rig.loop.scripts.append(script)
    report = rig.publisher.run([lines("a", "b")])

    assert rig.broker.names("queue_bind", "confirm_delivery", "basic_publish") == [
        ("queue_bind", "logs.history", "logs"),
        ("confirm_delivery",),
        ("basic_publish", "logs", "", b"a", True),
        ("basic_publish", "logs", "", b"b", True),
    ]
    assert rig.publisher.sessions[-1]._history == "bound"
    assert (report.counts.confirmed, report.unconfirmed, report.error) == (2, 0, None)


@pytest.mark.parametrize(
    ("code", "text", "outcome"),
    [
        (404, NO_HISTORY_QUEUE, "absent"),
        (403, "ACCESS_REFUSED - access to queue 'logs.history' in vhost '/' refused", "refused"),
    ],
    ids=["no-stream", "refused"],
)
def test_a_missing_or_refused_history_stream_still_leads_to_publishing(
    monkeypatch: pytest.MonkeyPatch, code: int, text: str, outcome: str
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        connection = rig.broker.latest
        channel = open_channel(connection)
        channel.reply("exchange_declare")
        probe = answer_history_bind(connection, code, text=text)
        assert probe.is_closed
        channel.reply("confirm_delivery")  # at once: nothing is waited for
        assert channel.is_open  # the probe's error does not reach the publishing channel
        rig.loop.run_threadsafe()
        assert published(channel.published) == bodies("a", "b")
        channel.ack(2, multiple=True)
        rig.loop.run_threadsafe_until(lambda: connection.is_closed)

    rig.loop.scripts.append(script)
    report = rig.publisher.run([lines("a", "b")])

    assert rig.broker.names("channel.closed_by_broker", "confirm_delivery") == [
        ("channel.closed_by_broker", code),
        ("confirm_delivery",),
    ]
    assert rig.publisher.sessions[-1]._history == outcome
    assert (report.counts.confirmed, report.unconfirmed, report.unsent) == (2, 0, 0)
    assert report.error is None
    assert len(rig.broker.connections) == 1


def test_a_stream_whose_node_is_starting_is_bound_again_before_publishing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        connection = rig.broker.latest
        channel = open_channel(connection)
        channel.reply("exchange_declare")
        answer_history_bind(connection, 404, text=HISTORY_NODE_DOWN)
        rig.loop.run_threadsafe()
        assert rig.broker.names("confirm_delivery", "basic_publish") == []  # waits
        rig.clock.now += 1.0
        (retry,) = [timer for timer in rig.loop.timers if timer.delay == HISTORY_RETRY_SECONDS]
        rig.loop.timers.remove(retry)
        retry.callback()
        second = answer_history_bind(connection)  # bound this time, on a new probe
        assert second.channel_number == 3
        channel.reply("confirm_delivery")
        assert published(channel.published) == bodies("a")
        channel.ack(1)
        rig.loop.run_threadsafe_until(lambda: connection.is_closed)

    rig.loop.scripts.append(script)
    report = rig.publisher.run([lines("a")])

    assert rig.broker.names("queue_bind", "confirm_delivery", "basic_publish") == [
        ("queue_bind", "logs.history", "logs"),
        ("queue_bind", "logs.history", "logs"),
        ("confirm_delivery",),
        ("basic_publish", "logs", "", b"a", True),
    ]
    assert rig.publisher.sessions[-1]._history == "bound"
    assert (report.counts.confirmed, report.error) == (1, None)


def test_a_stream_that_stays_unavailable_is_given_up_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        connection = rig.broker.latest
        channel = open_channel(connection)
        channel.reply("exchange_declare")
        answer_history_bind(connection, 404, text=HISTORY_NODE_DOWN)
        assert rig.broker.names("confirm_delivery") == []
        rig.clock.now += HISTORY_WAIT_SECONDS
        (retry,) = [timer for timer in rig.loop.timers if timer.delay == HISTORY_RETRY_SECONDS]
        rig.loop.timers.remove(retry)
        retry.callback()
        answer_history_bind(connection, 404, text=HISTORY_NODE_DOWN)
        channel.reply("confirm_delivery")  # live receivers get the lines all the same
        rig.loop.run_threadsafe()
        assert published(channel.published) == bodies("a")
        channel.ack(1)
        rig.loop.run_threadsafe_until(lambda: connection.is_closed)

    rig.loop.scripts.append(script)
    report = rig.publisher.run([lines("a")])

    assert rig.publisher.sessions[-1]._history == "unavailable"
    assert not [timer for timer in rig.loop.timers if timer.delay == HISTORY_RETRY_SECONDS]
    assert (report.counts.confirmed, report.error) == (1, None)


def test_every_session_binds_the_history_stream_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a broker restart the transient exchange comes back without the binding."""
    rig = Rig(monkeypatch)

    def first_connection() -> None:
        channel = bring_up_publisher(rig.broker.latest)
        rig.loop.run_threadsafe()
        channel.ack(1)
        rig.broker.latest.terminate(pika.exceptions.StreamLostError("Transport indicated EOF"))

    def second_connection() -> None:
        connection = rig.broker.latest
        channel = open_channel(connection)
        channel.reply("exchange_declare")
        assert channel.published == []  # m1 waits for the binding, as new lines would
        answer_history_bind(connection)
        channel.reply("confirm_delivery")
        assert channel.published == [(1, b"m1")]
        channel.ack(1)
        rig.loop.run_threadsafe_until(lambda: connection.is_closed)

    rig.loop.scripts.extend([first_connection, second_connection])
    report = rig.publisher.run([lines("m0", "m1")])

    assert rig.broker.names("queue_bind") == [("queue_bind", "logs.history", "logs")] * 2
    assert (report.counts.confirmed, report.counts.republished) == (2, 1)
