"""Where a resumed archive left off, read back from its own files rather than from the broker.

The position is the stream offset of the newest record on disk, so it survives a crash between
write and ack: what was written is never written again, and what was not is read again. The
publishers' newest numbers come back too, so a resend that the stream holds twice is dropped.
A record cut short by a crash mid-write (no final newline) is removed first: it was never
acked, so the stream delivers it again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

# Enough records to cover every publisher's unconfirmed window many times over.
TAIL_BYTES = 4 * 1024 * 1024


@dataclass
class ResumePoint:
    offset: int | None = None  # stream offset of the newest record; None: nothing to resume
    message_id: str | None = None  # that record's message id
    last_seq: dict[str, int] = field(default_factory=dict)  # newest number per publisher
    torn_bytes: int = 0  # cut from the end of the newest file
    unreadable: int = 0  # lines in the tail that are not records (skipped)


def remove_torn_tail(path: Path) -> int:
    """Cut a last line that has no newline; return how many bytes went."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        end = size
        while end > 0:
            start = max(0, end - 64 * 1024)
            chunk = os.pread(fd, end - start, start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if end < size:
            os.ftruncate(fd, end)
            os.fsync(fd)
        return size - end
    finally:
        os.close(fd)


def _tail_lines(path: Path) -> list[bytes]:
    """The whole records in the last TAIL_BYTES, or more if the last record is longer."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            want = TAIL_BYTES
            while True:
                start = max(0, size - want)
                file.seek(start)
                lines = [line for line in file.read().split(b"\n") if line]
                if start > 0:
                    lines = lines[1:]  # starts mid-record
                if lines or start == 0:
                    return lines
                want *= 4
    except FileNotFoundError:
        return []


def read_resume_point(path: Path, backup_count: int) -> ResumePoint:
    """The newest file that holds any record decides: the current one, else the last rotated."""
    point = ResumePoint(torn_bytes=remove_torn_tail(path))
    candidates = [path, *(path.with_name(f"{path.name}.{i}") for i in range(1, backup_count + 1))]
    for candidate in candidates:
        lines = _tail_lines(candidate)
        if not lines:
            continue
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                point.unreadable += 1
                continue
            if not isinstance(record, dict):
                point.unreadable += 1
                continue
            publisher, seq = record.get("publisher"), record.get("seq")
            offset = record.get("offset")
            if isinstance(publisher, str) and isinstance(seq, int):
                point.last_seq[publisher] = max(seq, point.last_seq.get(publisher, seq))
            if isinstance(offset, int):
                # The newest, not the largest: a stream declared again starts over at 0.
                point.offset = offset
                point.message_id = record.get("message_id")
        return point
    return point
