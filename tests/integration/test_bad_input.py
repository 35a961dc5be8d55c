"""Bad settings, bad credentials, missing permissions, an unusable log directory."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logcast.settings import CommonSettings
from logcast_disk_receiver.main import DiskSettings
from logcast_emitter.main import EmitterSettings
from logcast_screen_receiver.main import ScreenSettings
from tests.integration.broker import Broker
from tests.services import ServiceProcess, run_service, wait_for

SERVICES = ["emitter", "screen-receiver", "disk-receiver"]


def assert_one_line(stderr: bytes, *fragments: str) -> None:
    lines = stderr.decode().strip().splitlines()
    errors = [line for line in lines if not line.startswith("{")]
    assert len(errors) == 1, lines
    assert "Traceback" not in stderr.decode()
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.parametrize(
    ("service", "args", "env", "names"),
    [
        ("emitter", ["--amqp-url", "http://nope"], {}, ["--amqp-url", "LOGCAST_AMQP_URL"]),
        ("emitter", ["--level", "loud"], {}, ["--level", "loud"]),
        ("emitter", ["--stdin", "--demo"], {}, ["not more than one"]),
        ("emitter", ["--rate", "-1", "--demo"], {}, ["--rate"]),
        ("emitter", ["--bogus-flag"], {}, ["--bogus-flag"]),
        ("screen-receiver", [], {"LOGCAST_MIN_LEVEL": "chatty"}, ["LOGCAST_MIN_LEVEL", "chatty"]),
        ("screen-receiver", ["--color", "sometimes"], {}, ["--color"]),
        ("screen-receiver", ["--format", "xml"], {}, ["--format"]),
        ("disk-receiver", ["--max-bytes", "-5"], {}, ["--max-bytes", "LOGCAST_MAX_BYTES"]),
        ("disk-receiver", [], {"LOGCAST_FSYNC": "sometimes"}, ["LOGCAST_FSYNC"]),
        ("disk-receiver", ["--backup-count", "0"], {}, ["--backup-count"]),
        ("disk-receiver", ["--exchange", "bad name!"], {}, ["--exchange"]),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    service: str, args: list[str], env: dict[str, str], names: list[str]
) -> None:
    done = run_service(service, args, env, timeout=20)
    assert done.returncode == 2
    assert_one_line(done.stderr, f"{service}: error: invalid", *names)


def test_password_in_a_bad_url_is_not_echoed() -> None:
    done = run_service("emitter", [], {"LOGCAST_AMQP_URL": "amqp://user:s3cret@:bad:port/"})
    assert done.returncode == 2
    assert b"s3cret" not in done.stderr


@pytest.mark.parametrize(
    ("service", "settings"),
    [
        ("emitter", EmitterSettings),
        ("screen-receiver", ScreenSettings),
        ("disk-receiver", DiskSettings),
    ],
)
def test_help_documents_every_setting_with_its_variable(
    service: str, settings: type[CommonSettings]
) -> None:
    done = run_service(service, ["--help"], {})
    assert done.returncode == 0
    text = " ".join(done.stdout.decode().split())
    fields = [name for name in settings.model_fields if name != "message"]
    assert len(fields) >= 9
    for name in fields:
        assert f"--{name.replace('_', '-')} " in text
        assert f"[env: LOGCAST_{name.upper()}]" in text


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


def test_unreachable_broker_exits_3_after_the_retry_timeout() -> None:
    done = run_service(
        "screen-receiver",
        [],
        {
            "LOGCAST_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
            "LOGCAST_RETRY_TIMEOUT": "1.5",
        },
        timeout=30,
    )
    assert done.returncode == 3
    assert_one_line(done.stderr, "unreachable for 1.5s")
    assert any(
        json.loads(line)["event"] == "amqp.retrying"
        for line in done.stderr.decode().splitlines()
        if line.startswith("{")
    )


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


def test_missing_log_dir_exits_5(tmp_path: Path) -> None:
    done = run_service("disk-receiver", ["--log-dir", str(tmp_path / "missing")], {})
    assert done.returncode == 5
    assert_one_line(done.stderr, "does not exist")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, to fill up for real (CI runs as root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


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
