"""deploy/make-credentials.py: passwords, a cluster cookie and definitions, all made fresh."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "make-credentials.py"


def make(out: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(SCRIPT), str(out), *args], check=True, capture_output=True)


def test_each_run_makes_new_secrets_and_matching_definitions(tmp_path: Path) -> None:
    make(tmp_path / "a", "--history-max-age", "7D", "--history-max-bytes", "5000")
    make(tmp_path / "b")
    for name in ("emitter.password", "admin.password", "erlang.cookie"):
        first, second = (tmp_path / d / name for d in ("a", "b"))
        assert first.read_text().strip() != second.read_text().strip()
    cookie = (tmp_path / "a" / "erlang.cookie").read_text()
    assert len(cookie) == 64 and cookie.isalnum()
    assert (tmp_path / "a" / "erlang.cookie").stat().st_mode & 0o777 == 0o644
    definitions = json.loads((tmp_path / "a" / "definitions.json").read_text())
    (stream,) = definitions["queues"]
    assert stream["name"] == "logs.history" and stream["durable"] is True
    assert stream["arguments"] == {
        "x-queue-type": "stream",
        "x-max-age": "7D",
        "x-max-length-bytes": 5000,
    }
    assert definitions["bindings"][0]["destination"] == "logs.history"
    assert definitions["exchanges"][0]["durable"] is False  # the tutorial's transient exchange
    grants = {p["user"]: p for p in definitions["permissions"]}
    assert grants["emitter"]["read"] == "^logs$"
    assert "history" not in grants["emitter"]["configure"]
    assert "history" in grants["screen-receiver"]["read"]
    assert "history" not in grants["screen-receiver"]["write"]
