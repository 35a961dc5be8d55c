"""Every receiver gets every message, in order; late receivers get no backlog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pika
import pika.exceptions
import pytest

from tests.integration.broker import Broker
from tests.integration.helpers import disk_records, screen_json_records, screen_texts
from tests.services import ServiceProcess, wait_for

N = 3000


def test_every_receiver_gets_every_message_in_order(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    log_dir = tmp_path / "disk"
    log_dir.mkdir()
    screens = [
        start_service("screen-receiver", "--color", "always"),
        start_service("screen-receiver", "--format", "json"),
    ]
    disk = start_service("disk-receiver", "--log-dir", str(log_dir))
    for receiver in [*screens, disk]:
        receiver.wait_ready()

    lines = [f"warning: line-{i:05d}" if i % 7 == 0 else f"line-{i:05d}" for i in range(N)]
    emitter = start_service("emitter", "--stdin", stdin=True)
    assert emitter.proc.stdin is not None
    emitter.proc.stdin.write(("\n".join(lines) + "\n").encode())
    emitter.proc.stdin.close()
    assert emitter.proc.wait(60) == 0, emitter.stderr()
    done = emitter.events("emitter.done")[0]
    assert (done["confirmed"], done["unroutable"], done["unconfirmed"]) == (N, 0, 0)

    wait_for(lambda: len(disk_records(log_dir)) >= N, 30, "disk records")
    wait_for(lambda: all(len(s.stdout().splitlines()) >= N for s in screens), 30, "screen lines")
    for receiver in [*screens, disk]:
        assert receiver.stop() == 0, receiver.stderr()

    coloured = screen_texts(screens[0])
    assert coloured == lines
    assert "\x1b[33mWARNING \x1b[0m" in screens[0].stdout()  # --color always
    as_json = screen_json_records(screens[1])
    assert [r["text"] for r in as_json] == lines
    records = disk_records(log_dir)
    assert [r["text"] for r in records] == lines
    assert len({r["message_id"] for r in records}) == N
    assert records[7]["level"] == "warning" and records[1]["level"] == "info"
    assert records[0]["app"] == "emitter" and records[0]["host"] != "-"
    assert records[0]["time"] and records[0]["received"]


def test_late_receiver_gets_no_backlog_and_its_queue_is_exclusive(
    start_service: Callable[..., ServiceProcess], broker: Broker
) -> None:
    early = start_service("screen-receiver")
    early.wait_ready()
    sent = start_service("emitter", "info: before the late receiver")
    assert sent.proc.wait(30) == 0
    wait_for(lambda: "before the late receiver" in early.stdout(), 10, "early receiver")

    late = start_service("screen-receiver")
    queue = late.wait_ready()[0]["queue"]
    assert queue.startswith("amq.gen-")

    # Another connection sees the queue but may not use it: it is exclusive to the receiver.
    connection = broker.blocking()
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as locked:
            connection.channel().queue_declare(queue, passive=True)
        assert locked.value.reply_code == 405  # RESOURCE_LOCKED

        marker = start_service("emitter", "info: after the late receiver")
        assert marker.proc.wait(30) == 0
        wait_for(lambda: "after the late receiver" in late.stdout(), 10, "late receiver")
        assert screen_texts(late) == ["info: after the late receiver"]
        assert late.stop() == 0

        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as gone:
            connection.channel().queue_declare(queue, passive=True)
        assert gone.value.reply_code == 404  # deleted with its connection
    finally:
        connection.close()
