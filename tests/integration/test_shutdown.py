"""SIGTERM/SIGINT mid-stream: exit 0 within 2 s, and the file ends on a whole record."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.services import ServiceProcess, wait_for


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_receivers_stop_cleanly_mid_stream(
    sig: int, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path), "--fsync", "always")
    screen = start_service("screen-receiver")
    disk.wait_ready()
    screen.wait_ready()
    emitter = start_service("emitter", "--demo", "--rate", "20000")
    files = list(tmp_path.glob("*.jsonl"))
    wait_for(lambda: files[0].stat().st_size > 300_000, 20, "a stream on disk")

    for receiver in (disk, screen):
        started = time.monotonic()
        receiver.proc.send_signal(sig)
        code = receiver.proc.wait(5)
        elapsed = time.monotonic() - started
        assert code == 0, receiver.stderr()
        assert elapsed < 2.0, f"{receiver.name} took {elapsed:.2f}s to stop"
        assert receiver.events("stopping")

    data = files[0].read_bytes()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]
    assert len(records) > 100  # stopped mid-stream, not before it
    assert emitter.stop() == 0, emitter.stderr()


def test_emitter_demo_stops_cleanly(start_service: Callable[..., ServiceProcess]) -> None:
    emitter = start_service("emitter", "--demo", "--rate", "500")
    wait_for(lambda: emitter.events("ready"), 10, "emitter ready")
    time.sleep(0.5)
    started = time.monotonic()
    assert emitter.stop() == 0, emitter.stderr()
    assert time.monotonic() - started < 2.0
    done = emitter.events("emitter.done")[0]
    assert done["published"] > 0 and done["unconfirmed"] == 0
