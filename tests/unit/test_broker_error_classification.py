"""How a session's end is classified, through AmqpSession.run() and run_with_reconnect.

Fatal (exit code, no retry), lost after being ready (reconnect at once), or unreachable
(reconnect with backoff until retry_timeout, then exit 3). Driven with a ConsumerSession.
"""

from __future__ import annotations

import time

import pika.exceptions
import pytest

from logcast import consuming
from logcast.amqp_session import run_with_reconnect
from logcast.consuming import Consumer
from logcast.errors import (
    AccessRefusedError,
    BrokerUnreachableError,
    ExitCode,
    LogcastError,
    UsageError,
)
from logcast.service_main import ServiceContext
from logcast.settings import ReceiverSettings
from logcast.wire_format import ReceivedLog
from tests.unit.fakes import (
    AMQP_URL,
    REDACTED_URL,
    FakeBroker,
    FakeIOLoop,
    QuickStop,
    bring_up_consumer,
    isolate_settings_env,
    make_settings,
    open_channel,
)

RETRY_TIMEOUT = 0.05


class NullSink:
    def write(self, log: ReceivedLog) -> None:
        pass

    def flush(self) -> None:
        pass

    def tick(self) -> None:
        pass


class Rig:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        isolate_settings_env(monkeypatch)
        self.loop = FakeIOLoop()
        monkeypatch.setattr(consuming, "IOLoop", lambda: self.loop)
        self.broker = FakeBroker()
        self.stop = QuickStop(cap=0.002)  # backoff waits recorded, then cut short
        self.settings = make_settings(
            ReceiverSettings,
            fast_decode=False,
            retry_timeout=RETRY_TIMEOUT,
        )
        self.consumer = Consumer(
            self.settings, ServiceContext("test", self.stop), NullSink(), connect=self.broker
        )

    def run(self) -> None:
        """What Consumer.run does, spelled out: sessions under run_with_reconnect."""
        run_with_reconnect(
            self.consumer._new_session, self.settings, self.stop, self.consumer.nodes
        )

    def ends_cleanly(self) -> None:
        """A session that comes up, is stopped and ends without error."""
        channel = bring_up_consumer(self.broker.latest)
        self.stop.request()
        self.loop.run_timers()
        channel.reply("basic_cancel")


def expect_fatal(rig: Rig, error_type: type[LogcastError], exit_code: int) -> LogcastError:
    with pytest.raises(error_type) as raised:
        rig.run()
    assert int(raised.value.exit_code) == exit_code
    assert len(rig.broker.connections) == 1, "a fatal error must not be retried"
    assert rig.stop.sleeps == []
    assert AMQP_URL not in raised.value.message
    return raised.value


# ---- fatal ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "text"),
    [
        (403, "ACCESS_REFUSED - access to vhost '/' refused for user 'alice'"),
        (530, "NOT_ALLOWED - vhost / not found"),
    ],
)
@pytest.mark.parametrize("ready", [True, False], ids=["ready", "opening-channel"])
def test_connection_closed_with_an_access_code_is_fatal_exit_4(
    monkeypatch: pytest.MonkeyPatch, code: int, text: str, ready: bool
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        connection = rig.broker.latest
        if ready:
            bring_up_consumer(connection)
        else:
            connection.open()
        connection.terminate(pika.exceptions.ConnectionClosedByBroker(code, text))

    rig.loop.scripts.append(script)
    error = expect_fatal(rig, AccessRefusedError, 4)
    assert isinstance(error, AccessRefusedError)
    assert text in error.message


@pytest.mark.parametrize(
    ("code", "text", "error_type", "exit_code"),
    [
        (
            406,
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'logs' in vhost '/': "
            "received 'fanout' but current is 'direct'",
            UsageError,
            ExitCode.USAGE,
        ),
        (
            403,
            "ACCESS_REFUSED - access to exchange 'logs' in vhost '/' refused for user 'alice'",
            AccessRefusedError,
            ExitCode.ACCESS_REFUSED,
        ),
    ],
    ids=["406-usage", "403-access"],
)
def test_channel_closed_by_the_broker_at_the_declare_is_fatal(
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    text: str,
    error_type: type[LogcastError],
    exit_code: ExitCode,
) -> None:
    rig = Rig(monkeypatch)

    def script() -> None:
        channel = open_channel(rig.broker.latest)
        assert "exchange_declare" in channel.replies
        channel.close_by_broker(code, text)  # instead of Exchange.DeclareOk

    rig.loop.scripts.append(script)
    error = expect_fatal(rig, error_type, int(exit_code))
    assert text in error.message
    # The session closed the connection itself, after the channel went.
    assert rig.broker.names("channel.closed_by_broker", "connection.close") == [
        ("channel.closed_by_broker", code),
        ("connection.close",),
    ]
    assert rig.broker.names("basic_qos", "queue_declare") == []


@pytest.mark.parametrize(
    "error",
    [
        pika.exceptions.ProbableAuthenticationError("ConnectionClosedByBroker: (403) ..."),
        pika.exceptions.AuthenticationError("PLAIN"),
    ],
    ids=["probable-authentication", "authentication"],
)
def test_authentication_failure_on_open_is_fatal_exit_4(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    rig = Rig(monkeypatch)
    rig.loop.scripts.append(lambda: rig.broker.latest.fail_open(error))

    refused = expect_fatal(rig, AccessRefusedError, 4)
    assert refused.message == f"broker refused the credentials for {REDACTED_URL}"


def test_vhost_access_denied_on_open_is_fatal_exit_4(monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(monkeypatch)
    denied = pika.exceptions.ProbableAccessDeniedError("ConnectionClosedByBroker: (530) ...")
    rig.loop.scripts.append(lambda: rig.broker.latest.fail_open(denied))

    refused = expect_fatal(rig, AccessRefusedError, 4)
    assert refused.message == f"broker refused access to the vhost of {REDACTED_URL}"


# ---- lost after being ready: reconnect at once ---------------------------------------------------
@pytest.mark.parametrize(
    "loss",
    [
        pika.exceptions.ConnectionClosedByBroker(
            320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
        ),
        pika.exceptions.StreamLostError("Stream connection lost: ConnectionResetError(104)"),
        pika.exceptions.AMQPHeartbeatTimeout("No activity or too many missed heartbeats"),
    ],
    ids=["320-forced", "stream-lost", "heartbeat"],
)
def test_a_ready_session_that_loses_its_connection_is_replaced_at_once(
    monkeypatch: pytest.MonkeyPatch, loss: BaseException
) -> None:
    rig = Rig(monkeypatch)

    def lose_it() -> None:
        bring_up_consumer(rig.broker.latest)
        rig.broker.latest.terminate(loss)

    rig.loop.scripts.extend([lose_it, rig.ends_cleanly])
    rig.run()  # no error: the second session ended on a stop

    assert len(rig.broker.connections) == 2
    assert rig.stop.sleeps == []  # no backoff after a session that was ready
    assert all(c.is_closed for c in rig.broker.connections)
    assert rig.broker.connections[1].channel_.consumers  # it consumed a fresh queue


def test_a_channel_closed_by_the_broker_for_another_reason_reconnects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def queue_deleted() -> None:
        channel = bring_up_consumer(rig.broker.latest)
        channel.close_by_broker(404, "NOT_FOUND - queue 'amq.gen-x' deleted")

    rig.loop.scripts.extend([queue_deleted, rig.ends_cleanly])
    rig.run()

    assert len(rig.broker.connections) == 2
    assert rig.broker.connections[0].is_closed


def test_sessions_that_keep_dropping_right_after_set_up_back_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broker that closes every session just after it got ready (a policy deleting queues,
    say) must not cause a tight reconnect loop: from the second such loss in a row, wait."""
    rig = Rig(monkeypatch)

    def lose_it() -> None:
        bring_up_consumer(rig.broker.latest)
        rig.broker.latest.terminate(pika.exceptions.StreamLostError("reset"))

    rig.loop.scripts.extend([lose_it, lose_it, lose_it, lose_it, rig.ends_cleanly])
    rig.run()

    assert len(rig.broker.connections) == 5
    assert rig.stop.sleeps == [0.2, 0.4, 0.8]  # none after the first, then doubling


# ---- unreachable: backoff until retry_timeout --------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        pika.exceptions.AMQPConnectionError("Connection refused"),
        pika.exceptions.StreamLostError("Transport indicated EOF"),
        pika.exceptions.IncompatibleProtocolError("StreamLostError: EOF"),
    ],
    ids=["refused", "stream-lost", "not-amqp"],
)
def test_an_unreachable_broker_is_retried_with_backoff_until_retry_timeout_then_exit_3(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    rig = Rig(monkeypatch)
    rig.loop.every_start = lambda: rig.broker.latest.fail_open(error)

    started = time.monotonic()
    with pytest.raises(BrokerUnreachableError) as raised:
        rig.run()
    elapsed = time.monotonic() - started

    assert raised.value.exit_code is ExitCode.BROKER_UNREACHABLE
    assert int(raised.value.exit_code) == 3
    assert elapsed >= RETRY_TIMEOUT
    attempts = len(rig.broker.connections)
    assert attempts >= 2
    assert len(rig.stop.sleeps) == attempts - 1  # a wait between attempts, none after the last
    for n, wait in enumerate(rig.stop.sleeps):  # exponential (0.2 s doubling, capped) + jitter
        assert min(0.2 * 2**n, 5.0) <= wait <= min(0.2 * 2**n + 0.5, 5.0)
    message = raised.value.message
    assert REDACTED_URL in message and "s3cret-pw" not in message
    assert f"unreachable for {RETRY_TIMEOUT:g}s" in message


def test_a_session_lost_before_it_was_ready_is_retried_after_a_backoff_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def lost_while_setting_up() -> None:
        channel = open_channel(rig.broker.latest)
        assert "exchange_declare" in channel.replies
        rig.broker.latest.terminate(
            pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED - shutdown")
        )

    rig.loop.scripts.extend([lost_while_setting_up, rig.ends_cleanly])
    rig.run()

    assert len(rig.broker.connections) == 2
    assert len(rig.stop.sleeps) == 1
    assert 0.2 <= rig.stop.sleeps[0] <= 0.7


def test_a_stop_during_the_retries_ends_without_error(monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(monkeypatch)

    def refused() -> None:
        if len(rig.broker.connections) == 3:
            rig.stop.request()  # SIGTERM while the broker is still unreachable
        rig.broker.latest.fail_open(pika.exceptions.AMQPConnectionError("Connection refused"))

    rig.loop.every_start = refused
    rig.run()

    assert len(rig.broker.connections) == 3


def test_a_stop_while_connecting_aborts_the_connection_and_ends_cleanly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)

    def stop_before_open() -> None:
        rig.stop.request()
        rig.loop.run_timers()  # housekeeping: not ready, so close() aborts the opening

    rig.loop.scripts.append(stop_before_open)
    rig.run()

    connection = rig.broker.latest
    assert rig.broker.names("connection.close") == [("connection.close",)]
    assert isinstance(connection.close_reason, pika.exceptions.ConnectionOpenAborted)
    assert len(rig.broker.connections) == 1


# ---- the same classification through Consumer.run ------------------------------------------------
def test_consumer_run_raises_the_fatal_error_and_closes_its_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(monkeypatch)
    rig.loop.scripts.append(
        lambda: rig.broker.latest.fail_open(pika.exceptions.ProbableAuthenticationError("403"))
    )
    with pytest.raises(AccessRefusedError):
        rig.consumer.run()
    assert rig.loop.closed
    assert len(rig.broker.connections) == 1
