"""Run the real service processes in tests and read what they print, polling against deadlines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

BIN = Path(sys.executable).parent
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line still being written
    return events


class ServiceProcess:
    """One service as a child process: stdout and stderr go to files for later reading."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        workdir: Path,
        *,
        stdin: bool = False,
    ) -> None:
        self.name = name
        self.stdout_path = workdir / f"{name}-{id(self)}.out"
        self.stderr_path = workdir / f"{name}-{id(self)}.err"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCAST_")}
        full_env.update(env)
        self._out = self.stdout_path.open("wb")
        self._err = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [str(BIN / name), *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            env=full_env,
        )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        events = read_events(self.stderr_path)
        return [e for e in events if name is None or e.get("event") == name]

    def wait_ready(self, count: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
        def ready() -> list[dict[str, Any]] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.stderr()}")
            found = self.events("ready")
            return found if len(found) >= count else None

        return wait_for(ready, timeout, f"{self.name} ready #{count}")

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdin:
            self.proc.stdin.close()
        self._out.close()
        self._err.close()


def run_service(
    name: str,
    args: list[str],
    env: dict[str, str],
    *,
    input_bytes: bytes | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCAST_")}
    full_env.update(env)
    return subprocess.run(
        [str(BIN / name), *args],
        input=input_bytes,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def assert_one_line(stderr: bytes, *fragments: str) -> None:
    """A user error: exactly one non-JSON line on stderr, holding every fragment; no traceback."""
    lines = stderr.decode().strip().splitlines()
    errors = [line for line in lines if not line.startswith("{")]
    assert len(errors) == 1, lines
    assert "Traceback" not in stderr.decode()
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def stop_timed(
    process: ServiceProcess, sig: int = signal.SIGTERM, limit: float = 5.0
) -> tuple[int | None, float]:
    """Send ``sig`` and wait up to ``limit`` s: (exit code, or None if still running; seconds)."""
    started = time.monotonic()
    process.proc.send_signal(sig)
    try:
        code = process.proc.wait(limit)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - started
    return code, time.monotonic() - started


def ctl_table(ctl: Callable[..., str], command: str, *columns: str) -> list[dict[str, str]]:
    """``rabbitmqctl -q <command> <columns...>`` as rows keyed by column, the header row dropped."""
    rows = []
    for line in ctl(command, *columns).splitlines():
        fields = line.split("\t")
        if len(fields) != len(columns) or fields == list(columns):
            continue
        rows.append(dict(zip(columns, fields, strict=True)))
    return rows


class LineFeeder:
    """Writes lines to a service's stdin from a thread, paced or as fast as the pipe takes them.

    The pipe is closed after the last line (``close``). A reader that went away (the service
    exited) ends the feed quietly, with ``broken`` set; ``written`` counts whole lines written.
    """

    def __init__(
        self,
        process: ServiceProcess,
        lines: Sequence[str],
        *,
        per_second: float | None = None,
        close: bool = True,
        hold: threading.Event | None = None,
    ) -> None:
        assert process.proc.stdin is not None, "start the service with stdin=True"
        self._pipe = process.proc.stdin
        self.lines = list(lines)
        self.per_second = per_second
        self.close = close
        # Halfway, wait (up to 5 minutes) for ``hold``: a fault then lands mid-stream however
        # slow the machine is.
        self.hold = hold
        self.written = 0
        self.broken = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="line-feeder", daemon=True)

    def start(self) -> LineFeeder:
        self._thread.start()
        return self

    def _run(self) -> None:
        step = max(1, int(self.per_second / 100)) if self.per_second else 512
        started = time.monotonic()
        try:
            for first in range(0, len(self.lines), step):
                if self._stopped.is_set():
                    break
                if self.hold is not None and first >= len(self.lines) // 2:
                    if not self.hold.is_set():
                        self.hold.wait(300)
                        started = time.monotonic() - first / (self.per_second or 1)
                    self.hold = None
                if self.per_second:
                    delay = started + first / self.per_second - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                chunk = self.lines[first : first + step]
                data = memoryview("".join(f"{line}\n" for line in chunk).encode())
                while data:  # unbuffered: a broken pipe leaves nothing for close() to flush
                    data = data[os.write(self._pipe.fileno(), data) :]
                self.written += len(chunk)
            if self.close:
                self._pipe.close()
        except (BrokenPipeError, ValueError):  # ValueError: the pipe was closed under us
            self.broken = True

    def stop(self) -> None:
        """Write no more lines (the pipe is still closed when ``close``)."""
        self._stopped.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the feed did not finish within {timeout}s"


def emit_lines(start_service: Callable[..., ServiceProcess], lines: list[str]) -> dict[str, Any]:
    """Send ``lines`` through ``emitter --stdin``; it must exit 0. Returns its emitter.done."""
    emitter = start_service("emitter", "--stdin", stdin=True)
    assert emitter.proc.stdin is not None
    emitter.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
    emitter.proc.stdin.close()
    assert emitter.proc.wait(30) == 0, emitter.stderr()
    return emitter.events("emitter.done")[0]
