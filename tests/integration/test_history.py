"""The history stream: --since replays a window, --resume archives every line exactly once.

The stream is declared up front, as compose's definitions do; the emitter binds it each session.
A broker restart (stop_app/start_app) removes the transient exchange and every binding from it,
so these tests also show that the emitter restores the stream's binding before it publishes.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from tests.integration.broker import Broker
from tests.integration.conftest import ServiceStarter
from tests.integration.helpers import screen_texts
from tests.integration.test_metrics import free_port, scrape
from tests.services import LineFeeder, ServiceProcess, emit_lines, wait_for

TOTAL = 20_000
PACE = 4000  # lines per second: the restart or the kill lands mid-stream
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def history(broker: Broker, exchange: str, start_service: ServiceStarter) -> Iterator[str]:
    """``<exchange>.history``, declared as the definitions declare it; deleted afterwards, once
    the services are gone (a receiver would declare it again)."""
    name = f"{exchange}.history"
    with broker.blocking() as connection:
        channel = connection.channel()
        channel.queue_declare(
            name,
            durable=True,
            arguments={"x-queue-type": "stream", "x-max-length-bytes": 200_000_000},
        )
    yield name
    start_service.close_all()
    with broker.blocking() as connection:
        channel = connection.channel()
        channel.queue_delete(name)
        channel.exchange_delete(exchange)


@pytest.fixture
def restart_broker(broker: Broker) -> Iterator[Callable[[], None]]:
    """Restart the broker's app (transient exchanges and their bindings go); always restarted."""
    stopped = False

    def restart() -> None:
        nonlocal stopped
        stopped = True
        broker.ctl("stop_app")
        time.sleep(1.0)
        broker.ctl("start_app")
        stopped = False

    yield restart
    if stopped:
        broker.ctl("start_app")


def archive(log_dir: Path, exchange: str) -> list[dict[str, Any]]:
    path = log_dir / f"{exchange}.history.jsonl"
    if not path.exists():
        return []
    whole = path.read_bytes().split(b"\n")[:-1]  # a record being written has no newline yet
    return [json.loads(line) for line in whole]


def wait_archived(log_dir: Path, exchange: str, count: int, timeout: float) -> list[Any]:
    return wait_for(
        lambda: (records := archive(log_dir, exchange)) and len(records) >= count and records,
        timeout,
        f"{count} archived records",
        interval=0.2,
    )


def assert_exactly_once(records: list[dict[str, Any]], lines: list[str]) -> None:
    counts = Counter(r["text"] for r in records)
    doubled = [text for text, n in counts.items() if n > 1]
    missing = set(lines) - set(counts)
    assert not doubled, f"{len(doubled)} written twice, e.g. {doubled[:3]}"
    assert not missing, f"{len(missing)} missing, e.g. {sorted(missing)[:3]}"
    assert len(records) == len(lines)
    offsets = [r["offset"] for r in records]
    assert offsets == sorted(offsets), "records out of stream order"


def marked(prefix: str, count: int) -> list[str]:
    return [f"{prefix} {i:06d}" for i in range(count)]


def test_since_replays_exactly_the_window_then_follows(
    start_service: Callable[..., ServiceProcess], history: str
) -> None:
    before = marked("before", 100)
    assert emit_lines(start_service, before)["confirmed"] == len(before)
    time.sleep(0.3)
    since = datetime.now(UTC)
    time.sleep(0.3)
    inside = marked("inside", 100)
    assert emit_lines(start_service, inside)["confirmed"] == len(inside)

    screen = start_service("screen-receiver", "--color", "never", "--since", since.isoformat())
    screen.wait_ready()
    wait_for(lambda: len(screen_texts(screen)) >= len(inside), 15, "the replayed window")
    live = marked("live", 100)
    assert emit_lines(start_service, live)["confirmed"] == len(live)
    wait_for(lambda: len(screen_texts(screen)) >= len(inside + live), 15, "the live lines")
    time.sleep(0.5)  # nothing more may come
    assert screen_texts(screen) == inside + live

    everything = start_service("screen-receiver", "--color", "never", "--since", "all")
    wait_for(lambda: len(screen_texts(everything)) >= 300, 15, "the whole history")
    assert screen_texts(everything) == before + inside + live
    assert screen.stop() == 0
    assert screen.events("receiver.done")[0]["missed"] == 0


def test_since_a_duration_includes_what_was_sent_in_it(
    start_service: Callable[..., ServiceProcess], history: str
) -> None:
    lines = marked("recent", 50)
    emit_lines(start_service, lines)
    screen = start_service("screen-receiver", "--color", "never", "--since", "1h")
    wait_for(lambda: len(screen_texts(screen)) >= len(lines), 15, "the last hour")
    assert screen_texts(screen) == lines
    assert screen.stop() == 0


@pytest.mark.parametrize("live_receiver", [False, True], ids=["no-live-receiver", "live-bound"])
def test_resume_writes_every_line_once_across_a_broker_restart(  # noqa: PLR0917
    start_service: Callable[..., ServiceProcess],
    history: str,
    exchange: str,
    tmp_path: Path,
    restart_broker: Callable[[], None],
    live_receiver: bool,
) -> None:
    log_dir = tmp_path / "archive"
    log_dir.mkdir()
    disk = start_service("disk-receiver", "--resume", "--log-dir", str(log_dir))
    disk.wait_ready()
    if live_receiver:
        start_service("screen-receiver", "--color", "never").wait_ready()
    lines = marked("restart", TOTAL)
    emitter = start_service("emitter", "--stdin", stdin=True)
    hold = threading.Event()
    feeder = LineFeeder(emitter, lines, per_second=PACE, hold=hold).start()
    wait_archived(log_dir, exchange, TOTAL // 4, 30)
    try:
        restart_broker()
    finally:
        hold.set()
    feeder.join(30)
    assert emitter.proc.wait(60) == 0, emitter.stderr()
    done = emitter.events("emitter.done")[0]
    assert done["confirmed"] == TOTAL and done["unroutable"] == 0, done
    assert len(emitter.events("ready")) >= 2, "the emitter never reconnected"
    assert all(e["history"] == "bound" for e in emitter.events("ready"))
    wait_archived(log_dir, exchange, TOTAL, 60)
    time.sleep(1.0)  # a duplicate would show up now
    assert_exactly_once(archive(log_dir, exchange), lines)
    assert disk.stop() == 0
    summary = disk.events("receiver.done")[0]
    assert summary["written"] == TOTAL and summary["missed"] == 0, summary


def test_resume_writes_every_line_once_across_sigkill(
    start_service: Callable[..., ServiceProcess], history: str, exchange: str, tmp_path: Path
) -> None:
    log_dir = tmp_path / "archive"
    log_dir.mkdir()
    first = start_service("disk-receiver", "--resume", "--log-dir", str(log_dir))
    first.wait_ready()
    lines = marked("killed", TOTAL)
    emitter = start_service("emitter", "--stdin", stdin=True)
    feeder = LineFeeder(emitter, lines, per_second=PACE).start()
    wait_archived(log_dir, exchange, TOTAL // 4, 30)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    time.sleep(0.5)  # lines keep coming while nobody archives them
    second = start_service("disk-receiver", "--resume", "--log-dir", str(log_dir))
    second.wait_ready()
    resumed = second.events("resume.after")
    assert resumed and resumed[0]["offset"] >= TOTAL // 4 - 1, second.stderr()
    wait_archived(log_dir, exchange, TOTAL // 2, 30)
    assert second.stop(signal.SIGKILL) == -signal.SIGKILL
    third = start_service("disk-receiver", "--resume", "--log-dir", str(log_dir))
    feeder.join(30)
    assert emitter.proc.wait(60) == 0, emitter.stderr()
    wait_archived(log_dir, exchange, TOTAL, 60)
    time.sleep(1.0)
    assert_exactly_once(archive(log_dir, exchange), lines)
    assert third.stop() == 0


def test_resume_from_first_or_next_when_nothing_is_on_disk(
    start_service: Callable[..., ServiceProcess], history: str, exchange: str, tmp_path: Path
) -> None:
    older = marked("older", 200)
    emit_lines(start_service, older)
    first_dir, next_dir = tmp_path / "first", tmp_path / "next"
    first_dir.mkdir()
    next_dir.mkdir()
    everything = start_service(
        "disk-receiver", "--resume", "--resume-from", "first", "--log-dir", str(first_dir)
    )
    only_new = start_service("disk-receiver", "--resume", "--log-dir", str(next_dir))
    everything.wait_ready()
    only_new.wait_ready()
    newer = marked("newer", 100)
    emit_lines(start_service, newer)
    wait_archived(first_dir, exchange, 300, 15)
    wait_archived(next_dir, exchange, 100, 15)
    time.sleep(0.5)
    assert [r["text"] for r in archive(first_dir, exchange)] == older + newer
    assert [r["text"] for r in archive(next_dir, exchange)] == newer


def _definitions_permissions(exchange: str) -> dict[str, dict[str, str]]:
    spec = importlib.util.spec_from_file_location(
        "make_credentials", REPO / "deploy/make-credentials.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = ("emitter", "screen-receiver", "disk-receiver", "admin")
    made = module.definitions({n: "x" for n in names}, exchange, "1h", 10_000_000)
    return {p["user"]: p for p in made["permissions"]}


@pytest.fixture
def least_privilege(broker: Broker, exchange: str) -> Iterator[dict[str, str]]:
    """The definitions' users (for this test's exchange), each with a random password."""
    suffix = uuid.uuid4().hex[:8]
    urls = {}
    made = []
    try:
        for role, grant in _definitions_permissions(exchange).items():
            if role == "admin":
                continue
            user, password = f"logcast-test-{role}-{suffix}", uuid.uuid4().hex
            broker.ctl("add_user", user, password)
            made.append(user)
            broker.ctl(
                "set_permissions",
                "-p",
                "/",
                user,
                grant["configure"],
                grant["write"],
                grant["read"],
            )
            urls[role] = broker.url_for(user, password)
        yield urls
    finally:
        for user in made:
            broker.ctl("delete_user", user)


def _refused(url: str, operation: Callable[[Any], Any]) -> bool:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        try:
            operation(connection.channel())
        except pika.exceptions.ChannelClosedByBroker as error:
            return error.reply_code == 403
    return False


def test_least_privilege_emitter_binds_receivers_read_nobody_else_declares(
    start_service: Callable[..., ServiceProcess],
    history: str,
    exchange: str,
    least_privilege: dict[str, str],
    tmp_path: Path,
) -> None:
    disk = start_service(
        "disk-receiver",
        "--resume",
        "--log-dir",
        str(tmp_path),
        LOGCAST_AMQP_URL=least_privilege["disk-receiver"],
    )
    disk.wait_ready()
    emitter = start_service(
        "emitter", "--stdin", stdin=True, LOGCAST_AMQP_URL=least_privilege["emitter"]
    )
    assert emitter.proc.stdin is not None
    emitter.proc.stdin.write(b"one\ntwo\n")
    emitter.proc.stdin.close()
    assert emitter.proc.wait(30) == 0, emitter.stderr()
    assert emitter.events("ready")[0]["history"] == "bound"
    wait_archived(tmp_path, exchange, 2, 15)
    screen = start_service(
        "screen-receiver",
        "--since",
        "all",
        "--color",
        "never",
        LOGCAST_AMQP_URL=least_privilege["screen-receiver"],
    )
    wait_for(lambda: screen_texts(screen) == ["one", "two"] or None, 15, "the replay")

    emitter_url, receiver_url = least_privilege["emitter"], least_privilege["screen-receiver"]
    stream = {"x-queue-type": "stream"}
    assert _refused(emitter_url, lambda ch: ch.basic_consume(history, lambda *a: None))
    assert _refused(
        emitter_url, lambda ch: ch.queue_declare(history, durable=True, arguments=stream)
    )
    assert _refused(emitter_url, lambda ch: ch.queue_delete(history))
    assert _refused(emitter_url, lambda ch: ch.queue_purge(history))
    assert _refused(receiver_url, lambda ch: ch.queue_bind(history, exchange))
    assert _refused(receiver_url, lambda ch: ch.queue_delete(history))
    assert _refused(
        receiver_url, lambda ch: ch.queue_declare(history, durable=True, arguments=stream)
    )


def test_metrics_show_the_position_and_the_lag(
    start_service: Callable[..., ServiceProcess], history: str, exchange: str, tmp_path: Path
) -> None:
    backlog = marked("backlog", 10_000)
    assert emit_lines(start_service, backlog)["confirmed"] == len(backlog)
    port = free_port()
    # One message in hand at a time, each fsynced: the archive drains slowly enough to be seen
    # behind (the tail is sampled as soon as it consumes).
    disk = start_service(
        "disk-receiver",
        "--resume",
        "--resume-from",
        "first",
        "--prefetch",
        "1",
        "--fsync",
        "always",
        "--log-dir",
        str(tmp_path),
        "--metrics-port",
        str(port),
    )
    disk.wait_ready()
    behind = wait_for(
        lambda: (m := scrape(port)) and m["logcast_history_lag"] > 0 and m, 20, "a lag sample"
    )
    assert behind["logcast_history_position"] < len(backlog) - 1
    records = wait_archived(tmp_path, exchange, len(backlog), 120)
    last = records[-1]["offset"]
    caught_up = wait_for(
        lambda: (m := scrape(port)) and m["logcast_history_lag"] == 0 and m, 20, "lag back to 0"
    )
    assert caught_up["logcast_history_position"] == last
    assert caught_up["logcast_written_total"] == len(backlog)


def test_resume_after_the_stream_was_declared_again_reads_it_from_its_start(
    start_service: Callable[..., ServiceProcess],
    broker: Broker,
    history: str,
    exchange: str,
    tmp_path: Path,
) -> None:
    old = marked("old", 300)
    emit_lines(start_service, old)
    first = start_service(
        "disk-receiver", "--resume", "--resume-from", "first", "--log-dir", str(tmp_path)
    )
    wait_archived(tmp_path, exchange, len(old), 15)
    assert first.stop() == 0
    with broker.blocking() as connection:
        channel = connection.channel()
        channel.queue_delete(history)
        channel.queue_declare(history, durable=True, arguments={"x-queue-type": "stream"})
    new = marked("new", 100)  # offsets 0..99 of the new stream, all below the old position
    emit_lines(start_service, new)
    second = start_service("disk-receiver", "--resume", "--log-dir", str(tmp_path))
    wait_archived(tmp_path, exchange, len(old + new), 15)
    time.sleep(0.5)
    assert [r["text"] for r in archive(tmp_path, exchange)] == old + new
    reset = second.events("history.reset")
    assert reset and reset[0]["position"] == len(old) - 1, second.stderr()
