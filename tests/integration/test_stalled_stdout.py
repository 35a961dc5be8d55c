"""A screen-receiver whose reader stopped reading (a full stdout pipe) still obeys SIGTERM.

It cannot write, so it cannot ack; on SIGTERM it gives up within 2 s: exit 5, one error line.
"""

from __future__ import annotations

import array
import fcntl
import os
import signal
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

from tests.services import BIN, ServiceProcess, read_events, wait_for

# Linux pipes hold 64 KiB in 4 KiB pages; small writes leave pages part-filled, so "full" can
# be well below 64 KiB. 3000 lines are about 400 KB: the receiver is blocked long before this.
PIPE_BYTES = 30_000


def pipe_holds(fd: int) -> int:
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def test_screen_receiver_with_unread_stdout_exits_5_on_sigterm(
    service_env: dict[str, str], start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCAST_")} | service_env
    err_path = tmp_path / "screen.err"
    with err_path.open("wb") as err:
        screen = subprocess.Popen(
            [str(BIN / "screen-receiver"), "--color", "never"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # never read
            stderr=err,
            env=env,
        )
    assert screen.stdout is not None
    try:

        def ready() -> bool:
            assert screen.poll() is None, err_path.read_text()
            return any(e["event"] == "ready" for e in read_events(err_path))

        wait_for(ready, 15, "screen-receiver ready")
        emitter = start_service("emitter", "--stdin", stdin=True)
        assert emitter.proc.stdin is not None
        lines = [f"stalled-{i:05d} ".ljust(100, "x") for i in range(3000)]
        emitter.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
        emitter.proc.stdin.close()
        assert emitter.proc.wait(30) == 0, emitter.stderr()
        done = emitter.events("emitter.done")[0]
        assert (done["confirmed"], done["unroutable"]) == (3000, 0), done

        fd = screen.stdout.fileno()
        wait_for(lambda: pipe_holds(fd) >= PIPE_BYTES, 10, "a full stdout pipe")
        time.sleep(1.0)  # the receiver sits in its write, with more to write
        assert screen.poll() is None, err_path.read_text()

        started = time.monotonic()
        screen.send_signal(signal.SIGTERM)
        try:
            code = screen.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError("screen-receiver ignored SIGTERM with stdout full") from None
        took = time.monotonic() - started
        assert code == 5, err_path.read_text()
        assert took < 2.0, f"screen-receiver took {took:.2f}s to stop"
        stderr = err_path.read_text()
        assert "Traceback" not in stderr
        errors = [line for line in stderr.splitlines() if not line.startswith("{")]
        assert len(errors) == 1, errors
        assert errors[0].startswith("screen-receiver: error: ")
        assert "stdout is not being read" in errors[0]
    finally:
        if screen.poll() is None:
            screen.kill()
            screen.wait(5)
        screen.stdout.close()
