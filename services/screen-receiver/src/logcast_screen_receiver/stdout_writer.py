"""Writes to stdout that never block for long, so a stalled reader cannot stall a stop.

A regular file (or /dev/null) takes any write at once. A pipe takes what fits: its size less
what it holds, less two pages of slack for partly filled pages. Anything else (a terminal, a
socket) gets at most PIPE_BUF bytes whenever select() says it is writable.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import stat
import termios
from collections.abc import Callable

from logcast.errors import StorageError

_WAIT_SECONDS = 0.1
_PIPE_BUF = 4096
_F_GETPIPE_SZ = 1032  # Linux
_SLACK = 2 * 4096


class StdoutWriter:
    def __init__(self, fd: int, stopped: Callable[[], bool]) -> None:
        self.fd = fd
        self.stopped = stopped
        mode = os.fstat(fd).st_mode
        self._whole = stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(fd))
        self._pipe_size = 0
        if stat.S_ISFIFO(mode):
            try:
                self._pipe_size = fcntl.fcntl(fd, _F_GETPIPE_SZ)
            except OSError:
                self._pipe_size = 0

    def _room(self) -> int:
        """Bytes that can be written now without blocking (0: wait)."""
        if self._pipe_size:
            queued = array.array("i", [0])
            fcntl.ioctl(self.fd, termios.FIONREAD, queued)
            room = self._pipe_size - queued[0] - _SLACK
            if room >= _PIPE_BUF:
                return room
        _, writable, _ = select.select([], [self.fd], [], _WAIT_SECONDS)
        return _PIPE_BUF if writable else 0

    def write(self, data: bytes) -> None:
        """All of ``data``; StorageError if stdout fails, or if a stop arrives while it is full."""
        view = memoryview(data)
        try:
            while view:
                room = len(view) if self._whole else self._room()
                if not room:
                    if self.stopped():
                        raise StorageError(
                            f"stdout is not being read; stopped with {len(view)} bytes unwritten"
                        )
                    continue
                view = view[os.write(self.fd, view[:room]) :]
        except OSError as error:
            raise StorageError(f"cannot write to stdout: {error.strerror or error}") from None
