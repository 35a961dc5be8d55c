"""The heartbeat file that container healthchecks read."""

from __future__ import annotations

import time
from pathlib import Path

from logcast.health import HealthBeacon, is_healthy


def test_health_file_freshness(tmp_path: Path) -> None:
    path = tmp_path / "health"
    beacon = HealthBeacon(path)
    assert not is_healthy(path, 10)
    beacon.up("amq.gen-x")
    assert is_healthy(path, 10)
    assert not is_healthy(path, 10, now=time.time() + 11)
    beacon.down()
    assert not is_healthy(path, 10)
