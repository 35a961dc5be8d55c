"""The broker pulls the rug: a deleted queue, a deleted exchange. Receivers carry on, and stop.

- A queue deleted under a receiver (``rabbitmqctl delete_queue``) cancels its consumer: it logs
  ``receiver.consumer_cancelled``, declares a fresh queue, and lines reach it again.
- An exchange deleted and declared again drops every binding: receivers assert theirs every
  5 s (or reconnect on the 404 of that rebind), so lines reach them again within seconds.
- SIGTERM ends a receiver within 2 s, also right after its consumer was cancelled mid-stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pika.exceptions
import pytest

from tests.integration.broker import Broker
from tests.integration.helpers import disk_records, screen_texts
from tests.services import LineFeeder, ServiceProcess, emit_lines, stop_timed, wait_for


def texts_of(receiver: ServiceProcess, log_dir: Path) -> list[str]:
    if receiver.name == "disk-receiver":
        return [r["text"] for r in disk_records(log_dir)] if list(log_dir.glob("*.jsonl")) else []
    return screen_texts(receiver)


def ends_with(receiver: ServiceProcess, log_dir: Path, lines: list[str]) -> bool:
    return texts_of(receiver, log_dir)[-len(lines) :] == lines


def emit(start_service: Callable[..., ServiceProcess], lines: list[str]) -> None:
    done = emit_lines(start_service, lines)
    assert (done["confirmed"], done["unroutable"]) == (len(lines), 0), done


def test_deleted_queue_is_replaced_by_a_fresh_one(
    broker: Broker, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    health = tmp_path / "h"
    logs = tmp_path / "logs"
    logs.mkdir()
    disk = start_service("disk-receiver", "--log-dir", str(logs), "--health-file", str(health))
    first = disk.wait_ready()[0]["queue"]
    assert health.read_text().strip() == first
    emit(start_service, ["before the delete"])
    wait_for(lambda: texts_of(disk, logs) == ["before the delete"], 10, "the first line")

    broker.ctl("delete_queue", first)
    cancelled = wait_for(
        lambda: disk.events("receiver.consumer_cancelled"), 5, "receiver.consumer_cancelled"
    )
    assert cancelled[0]["queue"] == first
    second = disk.wait_ready(2, timeout=5)[1]["queue"]
    assert second != first and second.startswith("amq.gen-")
    # In this order: ready on the first queue, the cancel, ready on the fresh queue.
    names = [
        e["event"] for e in disk.events() if e["event"] in {"ready", "receiver.consumer_cancelled"}
    ]
    assert names == ["ready", "receiver.consumer_cancelled", "ready"]
    wait_for(health.exists, 5, "the health file back")
    assert health.read_text().strip() == second

    after = [f"after the delete {i}" for i in range(50)]
    emit(start_service, after)
    wait_for(lambda: texts_of(disk, logs)[1:] == after, 10, "lines on the fresh queue")

    code, took = stop_timed(disk)
    assert code == 0, disk.stderr()
    assert took < 2.0, f"disk-receiver took {took:.2f}s to stop"
    assert texts_of(disk, logs) == ["before the delete", *after]
    done = disk.events("receiver.done")[0]
    assert (done["written"], done["duplicates"], done["missed"]) == (51, 0, 0), done
    assert not health.exists()


@pytest.mark.parametrize("service", ["screen-receiver", "disk-receiver"])
def test_sigterm_right_after_a_cancel_mid_stream_stops_within_2s(
    service: str,
    broker: Broker,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    args = ["--log-dir", str(logs)] if service == "disk-receiver" else ["--color", "never"]
    receiver = start_service(service, *args)
    queue = receiver.wait_ready()[0]["queue"]
    start_service("emitter", "--demo", "--rate", "5000")
    wait_for(lambda: len(texts_of(receiver, logs)) > 500, 15, "a stream arriving")

    broker.ctl("delete_queue", queue)
    wait_for(lambda: receiver.events("receiver.consumer_cancelled"), 5, "the cancel noticed")
    code, took = stop_timed(receiver)
    assert code == 0, receiver.stderr()
    assert took < 2.0, f"{service} took {took:.2f}s to stop after a cancel"
    assert receiver.events("receiver.done")


@pytest.mark.parametrize("service", ["screen-receiver", "disk-receiver"])
def test_sigterm_while_the_stream_flows_stops_within_2s(
    service: str, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    args = ["--log-dir", str(logs)] if service == "disk-receiver" else ["--color", "never"]
    receiver = start_service(service, *args, "--prefetch", "50")
    receiver.wait_ready()
    start_service("emitter", "--demo", "--rate", "20000")
    wait_for(lambda: len(texts_of(receiver, logs)) > 2000, 15, "a stream arriving")
    code, took = stop_timed(receiver)
    assert code == 0, receiver.stderr()
    assert took < 2.0, f"{service} took {took:.2f}s to stop mid-stream"
    count = len(texts_of(receiver, logs))
    done = receiver.events("receiver.done")[0]
    assert done["written"] == count, (done, count)


def test_exchange_deleted_and_declared_again_reaches_receivers_again(
    broker: Broker,
    exchange: str,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    screen = start_service("screen-receiver", "--color", "never")
    disk = start_service("disk-receiver", "--log-dir", str(logs))
    screen.wait_ready()
    disk.wait_ready()
    emit(start_service, ["before the exchange went"])
    for receiver in (screen, disk):
        wait_for(partial(texts_of, receiver, logs), 10, f"{receiver.name}: first line")

    # rabbitmqctl has no delete_exchange (3.x): an administrator's connection does both.
    connection = broker.blocking()
    try:
        channel = connection.channel()
        channel.exchange_delete(exchange)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as gone:
            connection.channel().exchange_declare(exchange, passive=True)
        assert gone.value.reply_code == 404
        channel.exchange_declare(exchange, "fanout")
    finally:
        connection.close()
    declared_at = time.monotonic()

    # A fresh emitter (it declares the exchange as well, which is idempotent) sends a marked
    # probe every 0.2 s until both receivers have one.
    emitter = start_service("emitter", "--stdin", stdin=True)
    feeder = LineFeeder(emitter, [f"probe-{i}" for i in range(60)], per_second=5).start()

    def probed(receiver: ServiceProcess) -> bool:
        return any(t.startswith("probe-") for t in texts_of(receiver, logs))

    wait_for(lambda: probed(screen) and probed(disk), 10, "a probe at both receivers")
    took = time.monotonic() - declared_at
    assert took < 8.0, f"lines came back only after {took:.1f}s"
    feeder.stop()
    feeder.join(5)
    assert emitter.proc.wait(15) == 0, emitter.stderr()

    tail = [f"after the exchange came back {i}" for i in range(100)]
    emit(start_service, tail)
    for receiver in (screen, disk):
        wait_for(partial(ends_with, receiver, logs, tail), 10, f"{receiver.name}: the tail")
        assert receiver.stop() == 0, receiver.stderr()
        texts = texts_of(receiver, logs)
        probes = [t for t in texts if t.startswith("probe-")]
        # Whatever probes arrived came in order, once each, and nothing else was written.
        assert probes == sorted(set(probes), key=lambda t: int(t.split("-")[1]))
        assert texts == ["before the exchange went", *probes, *tail]
        assert not receiver.events("crashed")
