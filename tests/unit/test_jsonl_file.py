"""Rotation never splits a record; one writer per file; errors are StorageErrors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logcast.errors import StorageError
from logcast_disk_receiver.jsonl_file import FsyncPolicy, RotatingJsonlFile


def open_file(path: Path, **overrides: object) -> RotatingJsonlFile:
    options: dict[str, object] = {
        "max_bytes": 0,
        "backup_count": 3,
        "fsync": FsyncPolicy.NEVER,
        "fsync_interval": 1.0,
    }
    options.update(overrides)
    return RotatingJsonlFile(path, **options)  # type: ignore[arg-type]


def record(i: int, size: int = 40) -> bytes:
    return json.dumps({"i": i, "pad": "x" * size}).encode() + b"\n"


def test_rotation_keeps_whole_records_and_backup_count(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    file = open_file(path, max_bytes=500, backup_count=2)
    for i in range(100):
        file.append(record(i))
        if i % 7 == 0:
            file.flush()
    file.close()
    files = [path.with_name("r.jsonl.2"), path.with_name("r.jsonl.1"), path]
    assert not path.with_name("r.jsonl.3").exists()
    seen = []
    for f in files:
        data = f.read_bytes()
        assert len(data) <= 500
        assert data.endswith(b"\n")
        seen += [json.loads(line)["i"] for line in data.splitlines()]
    assert seen == list(range(100 - len(seen), 100))  # newest records kept, in order
    assert file.rotations > 2


def test_a_record_larger_than_max_bytes_still_lands_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    file = open_file(path, max_bytes=100)
    file.append(record(1, size=10))
    file.append(record(2, size=500))
    file.close()
    assert json.loads(path.read_bytes())["i"] == 2
    assert json.loads(path.with_name("big.jsonl.1").read_bytes())["i"] == 1


def test_second_writer_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = open_file(tmp_path / "same.jsonl")
    with pytest.raises(StorageError, match="in use by another process"):
        open_file(tmp_path / "same.jsonl")
    first.close()


def test_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_file(tmp_path / "nope" / "x.jsonl")


def test_interval_fsync_follows_the_clock(tmp_path: Path) -> None:
    now = [0.0]
    file = open_file(
        tmp_path / "s.jsonl", fsync=FsyncPolicy.INTERVAL, fsync_interval=1.0, clock=lambda: now[0]
    )
    file.append(record(1))
    file.flush()
    assert file._unsynced  # within the interval: handed to the OS, not yet synced
    now[0] = 1.5
    file.tick()
    assert not file._unsynced
    file.close()
