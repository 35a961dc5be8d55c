"""The services' command lines without a broker: bad settings, --help, unreachable broker, no log dir.

These run the real console scripts as processes; none of them needs a broker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from logcast.settings import CommonSettings
from logcast_disk_receiver.main import DiskSettings
from logcast_emitter.main import EmitterSettings
from logcast_screen_receiver.main import ScreenSettings
from tests.services import BIN, assert_one_line, run_service


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


def test_missing_log_dir_exits_5(tmp_path: Path) -> None:
    done = run_service("disk-receiver", ["--log-dir", str(tmp_path / "missing")], {})
    assert done.returncode == 5
    assert_one_line(done.stderr, "does not exist")


@pytest.mark.parametrize("service", ["emitter", "screen-receiver", "disk-receiver"])
def test_unreachable_broker_names_host_and_port(service: str, tmp_path: Path) -> None:
    done = run_service(
        service,
        ["--log-dir", str(tmp_path)] if service == "disk-receiver" else [],
        {
            "LOGCAST_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
            "LOGCAST_RETRY_TIMEOUT": "0.5",
        },
        timeout=30,
    )
    assert done.returncode == 3
    assert_one_line(done.stderr, "unreachable for 0.5s", "connection refused by 127.0.0.1:1")
    reasons = [
        json.loads(line).get("reason", "")
        for line in done.stderr.decode().splitlines()
        if line.startswith("{")
    ]
    assert "cannot connect: connection refused by 127.0.0.1:1" in reasons
    assert b"AMQPConnection" not in done.stderr  # pika's exception names are not shown


def test_stdin_closed_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCAST_")}
    env["LOGCAST_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:1/%2F"
    env["LOGCAST_RETRY_TIMEOUT"] = "0.5"
    done = subprocess.run(
        [str(BIN / "emitter"), "--stdin"],
        stdin=None,
        capture_output=True,
        env=env,
        timeout=30,
        check=False,
        preexec_fn=lambda: os.close(0),  # the child runs as with `<&-`
    )
    assert done.returncode == 2, done.stderr
    assert_one_line(done.stderr, "emitter: error:", "standard input is closed")


def test_a_metrics_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_service(
            "screen-receiver",
            ["--metrics-port", str(port)],
            {"LOGCAST_SECRETS_DIR": "/nonexistent"},
        )
    assert done.returncode == 2
    assert_one_line(done.stderr, f"cannot serve metrics on port {port}")


@pytest.mark.parametrize(
    ("service", "args", "env", "names"),
    [
        ("screen-receiver", ["--since", "5x"], {}, ["--since", "LOGCAST_SINCE", "'5x'"]),
        ("screen-receiver", ["--since", "h"], {}, ["--since", "'h'"]),
        ("screen-receiver", ["--since", "first"], {}, ["--since", "'first'"]),
        ("screen-receiver", [], {"LOGCAST_SINCE": "yesterday"}, ["LOGCAST_SINCE", "yesterday"]),
        (
            "disk-receiver",
            ["--resume", "--resume-from", "yesterday"],
            {},
            ["--resume-from", "LOGCAST_RESUME_FROM", "'yesterday'"],
        ),
        ("disk-receiver", ["--resume", "--resume-from", "last"], {}, ["--resume-from", "'last'"]),
        ("disk-receiver", [], {"LOGCAST_RESUME_FROM": "1h"}, ["LOGCAST_RESUME_FROM", "'1h'"]),
        (
            "screen-receiver",
            [],
            {"LOGCAST_HISTORY_MAX_AGE": "1week"},
            ["--history-max-age", "LOGCAST_HISTORY_MAX_AGE", "'1week'"],
        ),
        ("disk-receiver", [], {"LOGCAST_HISTORY_MAX_AGE": "0h"}, ["LOGCAST_HISTORY_MAX_AGE"]),
        ("disk-receiver", [], {"LOGCAST_HISTORY_MAX_AGE": "24"}, ["LOGCAST_HISTORY_MAX_AGE"]),
    ],
)
def test_bad_history_settings_exit_2_with_one_line(
    service: str, args: list[str], env: dict[str, str], names: list[str], tmp_path: Path
) -> None:
    # Should a bad value pass, the service must not reach a real broker: an unreachable one.
    safe = {
        "LOGCAST_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
        "LOGCAST_RETRY_TIMEOUT": "0.5",
        "LOGCAST_SECRETS_DIR": "/nonexistent",
        "LOGCAST_LOG_DIR": str(tmp_path),
    }
    done = run_service(service, args, {**safe, **env}, timeout=20)
    assert done.returncode == 2, done.stderr
    assert_one_line(done.stderr, f"{service}: error: invalid", *names)


@pytest.mark.parametrize(
    ("service", "args"),
    [
        ("screen-receiver", ["--since", "1h30m"]),
        ("screen-receiver", ["--since", "2026-12-01T08:00:00+01:00"]),
        ("disk-receiver", ["--resume", "--resume-from", "first", "--history-max-age", "7D"]),
    ],
)
def test_good_history_settings_pass_to_the_broker_stage(
    service: str, args: list[str], tmp_path: Path
) -> None:
    """The counterpart of the above: valid values are not usage errors (exit 3: no broker)."""
    env = {
        "LOGCAST_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
        "LOGCAST_RETRY_TIMEOUT": "0.5",
        "LOGCAST_SECRETS_DIR": "/nonexistent",
        "LOGCAST_LOG_DIR": str(tmp_path),
    }
    done = run_service(service, args, env, timeout=30)
    assert done.returncode == 3, done.stderr
    assert_one_line(done.stderr, "unreachable for 0.5s")
