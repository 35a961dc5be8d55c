"""SIGTERM/SIGINT turned into a flag that the I/O loop polls."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopSignal:
    """Set once a stop is requested; waits on it end early (used as the backoff sleep)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> None:
        # Only a flag is set: the handler must not touch pika, which is not re-entrant.
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._event.set()

    def request(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> None:
        self._event.wait(seconds)
