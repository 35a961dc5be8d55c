"""Prometheus metrics move as messages flow, for the emitter and for a receiver."""

from __future__ import annotations

import re
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.services import ServiceProcess, run_service, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        found = re.match(r'^(logcast_\w+)\{service="[\w-]+"\} (\S+)$', line)
        if found:
            values[found.group(1)] = float(found.group(2))
    return values


def test_receiver_counters_follow_the_messages(
    start_service: Callable[..., ServiceProcess], service_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path), "--metrics-port", str(port))
    disk.wait_ready()
    before = scrape(port)
    assert before["logcast_received_total"] == 0
    assert before["logcast_connected"] == 1
    lines = b"".join(b"metrics line %d\n" % i for i in range(40))
    done = run_service("emitter", ["--stdin"], service_env, input_bytes=lines)
    assert done.returncode == 0, done.stderr
    after = wait_for(
        lambda: (m := scrape(port))["logcast_written_total"] == 40 and m,
        10,
        "written_total to reach 40",
    )
    assert after["logcast_received_total"] == 40
    assert after["logcast_missed_total"] == after["logcast_duplicates_total"] == 0
    assert "logcast_queue_backlog" in after and "logcast_rotations_total" in after
    assert disk.stop() == 0


def test_emitter_counters_move_while_it_publishes(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    start_service("screen-receiver").wait_ready()
    port = free_port()
    emitter = start_service(
        "emitter", "--demo", "--rate", "200", "--count", "2000", "--metrics-port", str(port)
    )
    emitter.wait_ready()
    first = scrape(port)["logcast_published_total"]
    second = wait_for(
        lambda: (value := scrape(port)["logcast_published_total"]) > first + 50 and value,
        10,
        "published_total to grow",
    )
    metrics = scrape(port)
    assert metrics["logcast_confirmed_total"] >= second - 1000  # at most a window in flight
    assert metrics["logcast_connected"] == 1
    assert emitter.stop() == 0  # demo lines left over at a stop are not an error
