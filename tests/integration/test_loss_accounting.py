"""What a receiver loses, it counts: a bounded queue dropping its head, a forced reconnect.

Every logcast publisher numbers its lines; a receiver's ``receiver.done`` summary then says
exactly how many of one publisher's lines, between the first and the last it got, never
reached it (``missed``), and how many came twice (``duplicates``, never written again).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.broker import Broker
from tests.integration.helpers import disk_records, screen_texts
from tests.services import LineFeeder, ServiceProcess, ctl_table, stop_timed, wait_for

QUEUE_MAX_BYTES = 200_000
PREFETCH = 10
BULK = 5000
LINE_BYTES = 200


def texts_of(receiver: ServiceProcess, log_dir: Path) -> list[str]:
    if receiver.name == "disk-receiver":
        return [r["text"] for r in disk_records(log_dir)] if list(log_dir.glob("*.jsonl")) else []
    return screen_texts(receiver)


def receiver_args(service: str, log_dir: Path) -> list[str]:
    return ["--log-dir", str(log_dir)] if service == "disk-receiver" else ["--color", "never"]


def queue_row(broker: Broker, queue: str, *columns: str) -> dict[str, str]:
    rows = [r for r in ctl_table(broker.ctl, "list_queues", "name", *columns) if r["name"] == queue]
    assert len(rows) == 1, f"queue {queue} not listed once: {rows}"
    return rows[0]


def connection_of(broker: Broker, queue: str) -> str:
    """The broker's id of the connection consuming ``queue``: consumer -> channel -> connection."""
    channels = [
        r["channel_pid"]
        for r in ctl_table(broker.ctl, "list_consumers", "queue_name", "channel_pid")
        if r["queue_name"] == queue
    ]
    assert len(channels) == 1, channels
    connections = [
        r["connection"]
        for r in ctl_table(broker.ctl, "list_channels", "pid", "connection")
        if r["pid"] == channels[0]
    ]
    assert len(connections) == 1, connections
    return connections[0]


def assert_missed_events_add_up(receiver: ServiceProcess, missed: int) -> None:
    events = receiver.events("receiver.missed")
    assert events, "no receiver.missed event"
    assert sum(e["count"] for e in events) == missed
    assert events[-1]["missed_total"] == missed


@pytest.mark.parametrize("service", ["screen-receiver", "disk-receiver"])
def test_a_frozen_receiver_drops_its_oldest_lines_and_counts_them(
    service: str, broker: Broker, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    receiver = start_service(
        service,
        *receiver_args(service, logs),
        "--queue-max-bytes",
        str(QUEUE_MAX_BYTES),
        "--prefetch",
        str(PREFETCH),
    )
    queue = receiver.wait_ready()[0]["queue"]
    witness = start_service("screen-receiver", "--format", "json")  # unbounded, never frozen
    witness.wait_ready()
    arguments = queue_row(broker, queue, "arguments")["arguments"]
    assert re.search(rf"x-max-length-bytes\W+{QUEUE_MAX_BYTES}\b", arguments), arguments
    assert re.search(r"x-overflow\W+drop-head\b", arguments), arguments

    # One emitter throughout: the receiver must know the publisher before the loss.
    emitter = start_service("emitter", "--stdin", stdin=True)
    assert emitter.proc.stdin is not None
    head = [f"head-{i:02d}" for i in range(20)]
    bulk = [f"bulk-{i:05d} ".ljust(LINE_BYTES, "x") for i in range(BULK)]
    tail = [f"tail-{i:02d}" for i in range(20)]
    sent = head + bulk + tail

    def write(lines: list[str]) -> None:
        assert emitter.proc.stdin is not None
        emitter.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
        emitter.proc.stdin.flush()

    write(head)
    wait_for(lambda: texts_of(receiver, logs) == head, 15, "the head lines")

    receiver.proc.send_signal(signal.SIGSTOP)
    try:
        write(bulk)
        # The witness has them all, so the broker has routed them all to the frozen queue too.
        wait_for(lambda: len(witness.stdout().splitlines()) >= 20 + BULK, 30, "the bulk routed")
        row = queue_row(broker, queue, "messages", "message_bytes", "message_bytes_ready")
        ready_bytes, all_bytes = int(row["message_bytes_ready"]), int(row["message_bytes"])
        assert ready_bytes <= QUEUE_MAX_BYTES, row
        # Deliveries in the frozen receiver's hands (unacked, at most --prefetch) are not bounded.
        assert all_bytes <= QUEUE_MAX_BYTES + PREFETCH * LINE_BYTES, row
        assert ready_bytes > QUEUE_MAX_BYTES - 2 * LINE_BYTES, f"queue not full: {row}"
        assert int(row["messages"]) < BULK // 2, row
    finally:
        receiver.proc.send_signal(signal.SIGCONT)

    write(tail)
    assert emitter.proc.stdin is not None
    emitter.proc.stdin.close()
    assert emitter.proc.wait(30) == 0, emitter.stderr()
    sent_summary = emitter.events("emitter.done")[0]
    assert (sent_summary["confirmed"], sent_summary["unconfirmed"]) == (len(sent), 0)
    wait_for(lambda: texts_of(receiver, logs)[-20:] == tail, 15, "the tail lines")

    code, took = stop_timed(receiver)
    assert code == 0, receiver.stderr()
    assert took < 2.0
    texts = texts_of(receiver, logs)
    positions = [sent.index(t) for t in texts]
    assert positions == sorted(set(positions)), "lines out of order or repeated"
    assert texts[:20] == head and texts[-20:] == tail
    done = receiver.events("receiver.done")[0]
    assert done["missed"] == len(sent) - len(texts), (done, len(texts))
    assert done["missed"] >= BULK - QUEUE_MAX_BYTES // LINE_BYTES - PREFETCH, done
    assert (done["written"], done["duplicates"], done["late"]) == (len(texts), 0, 0), done
    assert_missed_events_add_up(receiver, done["missed"])
    assert witness.stop() == 0
    assert witness.events("receiver.done")[0]["missed"] == 0


def test_missed_count_is_exact_across_a_forced_reconnect(
    broker: Broker, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    disk = start_service("disk-receiver", "--log-dir", str(logs))
    first = disk.wait_ready()[0]["queue"]
    connection = connection_of(broker, first)
    names = ctl_table(broker.ctl, "list_connections", "pid", "client_properties")
    properties = next(r["client_properties"] for r in names if r["pid"] == connection)
    assert re.search(r"connection_name\W+logcast-disk-receiver@", properties), properties

    lines = [f"paced-{i:05d}" for i in range(3000)]
    emitter = start_service("emitter", "--stdin", stdin=True)
    feeder = LineFeeder(emitter, lines, per_second=1000).start()
    wait_for(lambda: len(texts_of(disk, logs)) >= 800, 15, "a third of the lines")
    broker.ctl("close_connection", connection, "logcast test: forced reconnect")
    second = disk.wait_ready(2, timeout=10)[1]["queue"]
    assert second != first
    assert len(texts_of(disk, logs)) < len(lines), "the reconnect came after the stream"

    feeder.join(20)
    assert not feeder.broken
    assert emitter.proc.wait(30) == 0, emitter.stderr()
    sent = emitter.events("emitter.done")[0]
    assert (sent["confirmed"], sent["republished"], sent["unconfirmed"]) == (3000, 0, 0), sent
    wait_for(lambda: texts_of(disk, logs)[-1:] == lines[-1:], 15, "the last line")

    code, took = stop_timed(disk)
    assert code == 0, disk.stderr()
    assert took < 2.0
    texts = texts_of(disk, logs)
    assert len(set(texts)) == len(texts), "a line written twice"
    assert texts == sorted(texts), "lines out of order"
    assert set(texts) <= set(lines)
    done = disk.events("receiver.done")[0]
    assert done["missed"] == len(lines) - len(set(texts)), (done, len(texts))
    assert (done["written"], done["duplicates"]) == (len(texts), 0), done
    # Lines sent while no queue was bound were returned to the emitter: lost, and counted.
    assert done["missed"] >= sent["unroutable"] > 0, (done, sent)
    assert_missed_events_add_up(disk, done["missed"])
    assert disk.events("amqp.connection_lost")
