"""An append-only JSON Lines file with size-based rotation and an fsync policy.

Records are written whole or not at all: a failed write is cut back to the last full record.
Before each batch the file is checked against the outside world. After a logrotate
``copytruncate`` the real size is used. If the file was renamed or deleted (logrotate's create
mode), a new file is opened at the path and counted in ``reopened``. If the directory was
removed, a StorageError is raised, so the caller acks nothing more.
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
        self.reopened = 0  # times the path no longer named our file and a new one was opened
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._unsynced = False
        self._last_sync = clock()
        self._closed = False
        self._fd: int | None = self._open()  # None once closed, so it is never closed twice

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
        if self.max_bytes and self._size + self._pending_bytes + len(record) > self.max_bytes:
            self._write_pending()  # also takes the real size: a copytruncate may have made room
            if self._size and self._size + len(record) > self.max_bytes:
                self._rotate()
        self._pending.append(record)
        self._pending_bytes += len(record)

    def flush(self) -> None:
        """Hand queued records to the OS and fsync as the policy says (StorageError on failure)."""
        if self._pending:
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
        """Flush and close; safe to call after any failure, and more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._retire()

    def _current_fd(self) -> int:
        """The fd for the next batch, with ``_size`` its real size: others may have changed it."""
        if self._fd is None:  # the file after a rotation could not be opened: try again
            self._fd = self._open()
            return self._fd
        stat = os.fstat(self._fd)
        self._size = stat.st_size
        try:
            named = os.stat(self.path)
            if (named.st_dev, named.st_ino) == (stat.st_dev, stat.st_ino):
                return self._fd
        except OSError:
            pass
        if not self.path.parent.is_dir():
            raise StorageError(f"log directory {self.path.parent} was removed")
        self._retire()
        self._fd = self._open()
        self.reopened += 1
        return self._fd

    def _write_pending(self) -> None:
        fd = self._current_fd()
        if not self._pending:
            return
        data = memoryview(b"".join(self._pending))
        start_size = self._size
        try:
            while data:
                written = os.write(fd, data)
                data = data[written:]
                self._size += written
        except OSError as error:
            self._cut_back(fd, start_size)
            raise StorageError(f"cannot write {self.path}: {_describe(error)}") from None
        self._pending.clear()
        self._pending_bytes = 0
        self._unsynced = True

    def _cut_back(self, fd: int, size: int) -> None:
        """Drop a partly written batch so the file still ends on a record boundary."""
        try:
            # Never extend: if the file was truncated meanwhile, that would add a hole of NULs.
            size = min(size, os.fstat(fd).st_size)
            os.ftruncate(fd, size)
            self._size = size
        except OSError:
            pass

    def _sync(self) -> None:
        self._last_sync = self.clock()
        if not self._unsynced or self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as error:
            raise StorageError(f"cannot fsync {self.path}: {_describe(error)}") from None
        self._unsynced = False

    def _retire(self) -> None:
        """Close the current file once, fsynced first unless the policy is never."""
        try:
            if self.fsync is not FsyncPolicy.NEVER:
                self._sync()
        finally:
            fd, self._fd = self._fd, None
            self._unsynced = False
            if fd is not None:
                try:
                    os.close(fd)
                except OSError as error:
                    raise StorageError(f"cannot close {self.path}: {_describe(error)}") from None

    def _rotate(self) -> None:
        # Rename while the file is still open, so a failed rotation leaves it open and usable.
        try:
            for index in range(self.backup_count - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.rename(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        except OSError as error:
            raise StorageError(f"cannot rotate {self.path}: {_describe(error)}") from None
        self._retire()
        self._fd = self._open()
        self.rotations += 1
