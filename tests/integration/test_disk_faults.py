"""The disk-receiver under an operator's faults: logrotate, a removed directory, a full disk."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from logcast.errors import StorageError
from logcast_disk_receiver.jsonl_file import FsyncPolicy, RotatingJsonlFile
from tests.services import ServiceProcess, emit_lines, wait_for


def whole_records(path: Path) -> list[dict[str, object]]:
    data = path.read_bytes()
    assert b"\0" not in data, "NUL-filled hole"
    assert not data or data.endswith(b"\n"), "file ends inside a record"
    return [json.loads(line) for line in data.splitlines()]


def emit(start_service: Callable[..., ServiceProcess], lines: list[str]) -> None:
    emit_lines(start_service, lines)


def texts(path: Path) -> list[object]:
    return [r["text"] for r in whole_records(path)] if path.exists() else []


def test_copytruncate_then_disk_full_leaves_whole_records(tiny_disk: Path) -> None:
    path = tiny_disk / "t.jsonl"
    file = RotatingJsonlFile(
        path, max_bytes=0, backup_count=1, fsync=FsyncPolicy.NEVER, fsync_interval=1.0
    )
    for i in range(1000):  # about 100 KiB
        file.append(json.dumps({"i": i, "pad": "x" * 90}).encode() + b"\n")
    file.flush()
    os.truncate(path, 0)  # logrotate copytruncate
    for i in range(4000):  # about 400 KiB: more than the disk holds
        file.append(json.dumps({"i": i, "pad": "y" * 97}).encode() + b"\n")
    with pytest.raises(StorageError, match="disk full"):
        file.flush()
    assert whole_records(path) == []  # the failed batch is cut back to where it started
    with pytest.raises(StorageError, match="disk full"):
        file.close()


def test_removed_log_directory_exits_5_naming_it(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    disk = start_service("disk-receiver", "--log-dir", str(logs), "--instance", "gone")
    disk.wait_ready()
    emit(start_service, ["before 1", "before 2"])
    wait_for(lambda: len(texts(logs / "gone.jsonl")) == 2, 15, "records before the removal")
    shutil.rmtree(logs)
    emit(start_service, ["after 1", "after 2"])
    assert disk.proc.wait(20) == 5, disk.stderr()
    stderr = disk.stderr()
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert errors == [f"disk-receiver: error: log directory {logs} was removed"]


def test_file_renamed_by_logrotate_is_reopened(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    disk = start_service(
        "disk-receiver", "--log-dir", str(logs), "--instance", "mv", "--max-bytes", "2000"
    )
    disk.wait_ready()
    path = logs / "mv.jsonl"
    emit(start_service, ["before 1", "before 2"])
    wait_for(lambda: len(texts(path)) == 2, 15, "records before the rename")
    path.rename(logs / "mv.jsonl.1")  # logrotate without copytruncate
    after = [f"after {i:02d}" for i in range(20)]  # about 4 KB: rotates twice
    emit(start_service, after)

    def all_after() -> bool:
        files = [logs / f"mv.jsonl.{n}" for n in (3, 2, 1)] + [path]
        return [t for f in files for t in texts(f)] == ["before 1", "before 2", *after]

    wait_for(all_after, 15, "every record, in order, across the rotated files")
    assert disk.stop() == 0, disk.stderr()
