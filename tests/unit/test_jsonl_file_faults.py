"""Faults from outside the process: logrotate (copytruncate or rename), a removed log directory,
a write that fails half-way. The file must stay whole records and every failure a StorageError."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from logcast.errors import StorageError
from logcast_disk_receiver.jsonl_file import FsyncPolicy, RotatingJsonlFile
from tests.unit.test_jsonl_file import open_file, record


def whole_records(path: Path) -> list[int]:
    """The record numbers in ``path``; fails on a NUL, a torn record or a missing final newline."""
    data = path.read_bytes()
    assert b"\0" not in data
    assert not data or data.endswith(b"\n")
    return [json.loads(line)["i"] for line in data.splitlines()]


@pytest.fixture
def disk_fills_after(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Set ``[fd, n]``: writes to ``fd`` then take ``n`` more bytes in all and fail with ENOSPC."""
    real_write = os.write
    budget: list[int] = []

    def write(fd: int, data: bytes | memoryview) -> int:
        if not budget or fd != budget[0]:
            return real_write(fd, data)
        if budget[1] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data[: budget[1]]))
        budget[1] -= written
        return written

    monkeypatch.setattr(os, "write", write)
    return budget


def test_cut_back_after_copytruncate_adds_no_nul_hole(
    tmp_path: Path, disk_fills_after: list[int]
) -> None:
    path = tmp_path / "t.jsonl"
    file = open_file(path)
    for i in range(5):
        file.append(record(i))
    file.flush()
    os.truncate(path, 0)  # logrotate copytruncate
    file.append(record(5))
    file.append(record(6))
    assert file._fd is not None
    disk_fills_after[:] = [file._fd, 10]  # part of record 5 lands, then the disk is full
    with pytest.raises(StorageError, match="disk full"):
        file.flush()
    assert whole_records(path) == []
    disk_fills_after.clear()
    file.close()  # the failed batch is still queued and lands now
    assert whole_records(path) == [5, 6]


def test_rotation_notices_a_copytruncate(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    file = open_file(path, max_bytes=500)
    for i in range(8):
        file.append(record(i))  # 480 bytes
    file.flush()
    os.truncate(path, 0)  # logrotate copytruncate: the file has room again
    file.append(record(8))
    file.close()
    assert file.rotations == 0
    assert not path.with_name("c.jsonl.1").exists()
    assert whole_records(path) == [8]


def test_removed_directory_stops_the_writes_with_a_clear_error(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    file = open_file(logs / "d.jsonl")
    file.append(record(1))
    file.flush()
    shutil.rmtree(logs)
    file.append(record(2))
    with pytest.raises(StorageError, match=re.escape(f"log directory {logs} was removed")):
        file.flush()  # raising here is what keeps the caller from acking
    with pytest.raises(StorageError, match="was removed"):
        file.close()
    assert file._fd is None


def test_removed_directory_at_rotation_is_a_storage_error_and_close_is_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    file = open_file(logs / "r.jsonl", max_bytes=100)
    file.append(record(1))
    file.flush()
    shutil.rmtree(logs)
    closed: list[int] = []
    real_close = os.close

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(os, "close", close)
    with pytest.raises(StorageError, match=re.escape(f"log directory {logs} was removed")):
        file.append(record(2))  # would rotate
    file.close()  # no EBADF from closing the fd a second time
    assert len(closed) == len(set(closed)) == 1


def test_failed_rotation_leaves_close_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.jsonl"
    file = open_file(path, max_bytes=100)
    file.append(record(1))
    file.flush()

    def refuse(self: Path, target: Path) -> None:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(Path, "rename", refuse)
    with pytest.raises(StorageError, match=r"cannot rotate .*: not writable"):
        file.append(record(2))
    monkeypatch.undo()
    file.append(record(3))  # the file is still open and usable: this rotation works
    file.close()
    assert file._fd is None
    assert whole_records(path.with_name("f.jsonl.1")) == [1]
    assert whole_records(path) == [3]


def test_file_renamed_away_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    file = open_file(path)
    file.append(record(1))
    file.flush()
    path.rename(path.with_name("m.jsonl.1"))  # logrotate without copytruncate
    file.append(record(2))
    file.flush()
    assert file.reopened == 1
    assert whole_records(path.with_name("m.jsonl.1")) == [1]
    assert whole_records(path) == [2]
    file.close()


def test_reopened_file_rotates_normally(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    file = open_file(path, max_bytes=200)
    file.append(record(1))
    file.flush()
    path.rename(path.with_name("n.jsonl.1"))
    for i in range(2, 9):
        file.append(record(i))  # the rename is noticed before the first rotation
    file.close()
    assert (file.reopened, file.rotations) == (1, 2)
    names = ["n.jsonl.3", "n.jsonl.2", "n.jsonl.1", "n.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert [whole_records(tmp_path / n) for n in names] == [[1], [2, 3, 4], [5, 6, 7], [8]]


def test_file_deleted_in_a_kept_directory_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    file = open_file(path, fsync=FsyncPolicy.ALWAYS)
    file.append(record(1))
    file.flush()
    path.unlink()
    file.append(record(2))
    file.flush()
    file.close()
    assert file.reopened == 1
    assert whole_records(path) == [2]


def test_open_file_is_not_taken_for_another(tmp_path: Path) -> None:
    file = open_file(tmp_path / "k.jsonl", fsync=FsyncPolicy.ALWAYS)
    for i in range(3):
        file.append(record(i))
        file.flush()
    file.close()
    assert file.reopened == 0
    assert whole_records(tmp_path / "k.jsonl") == [0, 1, 2]


def test_reopen_keeps_the_one_writer_lock(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    file = open_file(path)
    file.append(record(1))
    file.flush()
    path.rename(path.with_name("l.jsonl.1"))
    file.append(record(2))
    file.flush()
    with pytest.raises(StorageError, match="in use by another process"):
        RotatingJsonlFile(
            path, max_bytes=0, backup_count=1, fsync=FsyncPolicy.NEVER, fsync_interval=1.0
        )
    file.close()
