"""e2e fixtures: the real compose stack, under a unique project name, always torn down."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUEUE_MAX_BYTES = 1024 * 1024


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    e2e = [item for item in items if "tests/e2e" in str(item.path)]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    if e2e and not docker_available():
        # CI sets LOGCAST_REQUIRE_DOCKER=1 so that a missing engine fails instead of skipping.
        if os.environ.get("LOGCAST_REQUIRE_DOCKER") == "1":
            raise pytest.UsageError("LOGCAST_REQUIRE_DOCKER=1 but no Docker engine is reachable")
        for item in e2e:
            item.add_marker(pytest.mark.skip(reason="no Docker engine reachable"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def archived_texts(container: str) -> list[str]:
    """The texts in a --resume archiver's file (logs.history.jsonl), whole records only."""
    out = subprocess.run(
        ["docker", "exec", container, "cat", "/var/lib/logcast/logs.history.jsonl"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    whole = out.split("\n")[:-1]  # a record being written has no newline yet
    return [json.loads(row)["text"] for row in whole if row]


def run_docker(
    command: list[str],
    env: dict[str, str],
    input_bytes: bytes | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """A docker CLI command from the repository root; a failure shows its stderr's tail."""
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        input=input_bytes,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command[:4])} ... exited {done.returncode}:\n"
            f"{done.stderr.decode(errors='replace')[-3000:]}"
        )
    return done


class Compose:
    def __init__(self, project: str, files: tuple[str, ...] = ()) -> None:
        self.project = project
        self.files = [arg for name in files for arg in ("-f", name)]
        self.env = os.environ | {
            "LOGCAST_MANAGEMENT_PORT": str(free_port()),
            "LOGCAST_EMITTER_METRICS_PORT": str(free_port()),
            "LOGCAST_DEMO_RATE": "5",
            # Small enough that the stuck-receiver stage hits the bound.
            "LOGCAST_QUEUE_MAX_BYTES": str(QUEUE_MAX_BYTES),
            # A frozen receiver sends no heartbeats: with the default 30 s the broker would close
            # its connection (and delete its queue) if the stuck-receiver stage ran long.
            "LOGCAST_HEARTBEAT": "600",
            # A frozen receiver does not read its socket: with 4000 deliveries in flight the
            # broker's writes to it block and it drops the connection, queue and all. With few
            # in flight the socket buffers absorb them and the queue's bound is what holds.
            "LOGCAST_PREFETCH": "100",
        }

    def command(self, *args: str) -> list[str]:
        return ["docker", "compose", "-p", self.project, *self.files, *args]

    def run(
        self, *args: str, input_bytes: bytes | None = None, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return run_docker(self.command(*args), self.env, input_bytes, timeout, check)

    def emitter_on_stdin(self) -> subprocess.Popen[bytes]:
        """``docker compose run -T emitter --stdin``, its stdin and stderr piped to the test."""
        return subprocess.Popen(
            self.command("run", "--rm", "-T", "emitter", "--stdin"),
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def text(self, *args: str, timeout: float = 120) -> str:
        return self.run(*args, timeout=timeout).stdout.decode(errors="replace")

    def container_ids(self, service: str) -> list[str]:
        return self.text("ps", "-q", service).split()


@pytest.fixture(scope="module")
def compose() -> Iterator[Compose]:
    stack = Compose(f"logcast-e2e-{uuid.uuid4().hex[:8]}")
    try:
        yield stack
    finally:
        stack.run("down", "-v", "--remove-orphans", "--timeout", "15", check=False, timeout=180)
