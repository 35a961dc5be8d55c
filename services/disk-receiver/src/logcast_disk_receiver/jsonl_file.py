"""An append-only JSON Lines file with size-based rotation and an fsync policy.

Records are written whole or not at all: a failed write is cut back to the last full record.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from logcast.errors import StorageError


class FsyncPolicy(StrEnum):
    NEVER = "never"
    INTERVAL = "interval"
    ALWAYS = "always"


def _describe(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "disk full"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "not writable"
    if error.errno == errno.ENOENT:
        return "directory does not exist"
    return error.strerror or str(error)


class RotatingJsonlFile:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        backup_count: int,
        fsync: FsyncPolicy,
        fsync_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self.clock = clock
        self.rotations = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._unsynced = False
        self._last_sync = clock()
        self._fd = self._open()

    def _open(self) -> int:
        if not self.path.parent.is_dir():
            raise StorageError(f"log directory {self.path.parent} does not exist")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as error:
            raise StorageError(f"cannot open {self.path}: {_describe(error)}") from None
        try:
            # One writer per file: a second replica with the same instance name must not interleave.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StorageError(f"{self.path} is in use by another process") from None
        self._size = os.fstat(fd).st_size
        return fd

    def append(self, record: bytes) -> None:
        """Queue one whole record (ending in a newline); rotate first if it would not fit."""
        used = self._size + self._pending_bytes
        if self.max_bytes and used and used + len(record) > self.max_bytes:
            self._write_pending()
            self._rotate()
        self._pending.append(record)
        self._pending_bytes += len(record)

    def flush(self) -> None:
        """Hand queued records to the OS and fsync as the policy says (StorageError on failure)."""
        self._write_pending()
        if self.fsync is FsyncPolicy.ALWAYS or (
            self.fsync is FsyncPolicy.INTERVAL
            and self.clock() - self._last_sync >= self.fsync_interval
        ):
            self._sync()

    def tick(self) -> None:
        if (
            self.fsync is FsyncPolicy.INTERVAL
            and self.clock() - self._last_sync >= self.fsync_interval
        ):
            self._sync()

    def close(self) -> None:
        try:
            self.flush()
            if self.fsync is not FsyncPolicy.NEVER:
                self._sync()
        finally:
            os.close(self._fd)

    def _write_pending(self) -> None:
        if not self._pending:
            return
        data = memoryview(b"".join(self._pending))
        start_size = self._size
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
                self._size += written
        except OSError as error:
            self._cut_back(start_size)
            raise StorageError(f"cannot write {self.path}: {_describe(error)}") from None
        self._pending.clear()
        self._pending_bytes = 0
        self._unsynced = True

    def _cut_back(self, size: int) -> None:
        """Drop a partly written batch so the file still ends on a record boundary."""
        try:
            os.ftruncate(self._fd, size)
            self._size = size
        except OSError:
            pass

    def _sync(self) -> None:
        self._last_sync = self.clock()
        if not self._unsynced:
            return
        try:
            os.fsync(self._fd)
        except OSError as error:
            raise StorageError(f"cannot fsync {self.path}: {_describe(error)}") from None
        self._unsynced = False

    def _rotate(self) -> None:
        if self.fsync is not FsyncPolicy.NEVER:
            self._sync()
        os.close(self._fd)
        try:
            for index in range(self.backup_count - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.rename(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        except OSError as error:
            raise StorageError(f"cannot rotate {self.path}: {_describe(error)}") from None
        finally:
            self._fd = self._open()
        self.rotations += 1
