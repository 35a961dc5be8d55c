"""Exit codes that need a broker: refused credentials, missing permissions, a full disk."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.broker import Broker
from tests.services import ServiceProcess, assert_one_line, run_service, wait_for

SERVICES = ["emitter", "screen-receiver", "disk-receiver"]


@pytest.mark.parametrize("service", SERVICES)
def test_wrong_password_exits_4_without_retrying(
    broker: Broker, service: str, tmp_path: Path
) -> None:
    url = broker.url_for("guest", "wrong-password")
    done = run_service(
        service,
        ["--log-dir", str(tmp_path)] if service == "disk-receiver" else [],
        {"LOGCAST_AMQP_URL": url},
        timeout=30,
    )
    assert done.returncode == 4, done.stderr
    assert_one_line(done.stderr, "refused the credentials", "guest:***@")


@pytest.fixture
def limited_user(broker: Broker) -> Iterator[tuple[str, str]]:
    """A user that may connect to / but not declare queues (configure only on exchanges)."""
    user, password = f"logcast-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    broker.ctl("add_user", user, password)
    try:
        broker.ctl(
            "set_permissions",
            "-p",
            "/",
            user,
            "^logcast-test-.*",
            "^logcast-test-.*",
            "^logcast-test-.*",
        )
        yield user, password
    finally:
        broker.ctl("delete_user", user)


def test_missing_permission_exits_4(
    broker: Broker, exchange: str, limited_user: tuple[str, str]
) -> None:
    done = run_service(
        "screen-receiver",
        [],
        {
            "LOGCAST_AMQP_URL": broker.url_for(*limited_user),
            "LOGCAST_EXCHANGE": exchange,
        },
        timeout=30,
    )
    assert done.returncode == 4, done.stderr
    assert_one_line(done.stderr, "refused an operation", "ACCESS_REFUSED")


def test_disk_full_exits_5_and_keeps_whole_records(
    start_service: Callable[..., ServiceProcess], tiny_disk: Path
) -> None:
    disk = start_service("disk-receiver", "--log-dir", str(tiny_disk), "--max-bytes", "0")
    disk.wait_ready()
    emitter = start_service("emitter", "--stdin", stdin=True)
    assert emitter.proc.stdin is not None
    emitter.proc.stdin.write(b"".join(b"filler %06d %s\n" % (i, b"x" * 200) for i in range(3000)))
    emitter.proc.stdin.close()
    assert disk.proc.wait(30) == 5, disk.stderr()
    assert "disk full" in disk.stderr()
    data = next(tiny_disk.glob("*.jsonl")).read_bytes()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]
    assert 100 < len(records) < 3000
    assert [r["text"][:13] for r in records] == [f"filler {i:06d}" for i in range(len(records))]
    wait_for(lambda: emitter.proc.poll() is not None, 30, "emitter to finish")
