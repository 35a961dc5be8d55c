"""Where a resumed archive left off, read back from its files: torn tail, offset, numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from logcast.levels import Level
from logcast.log_record import encode_record
from logcast.wire_format import ReceivedLog
from logcast_disk_receiver import resume_point
from logcast_disk_receiver.resume_point import read_resume_point, remove_torn_tail

NOW = 1_796_112_000_000


def record(
    offset: int | None,
    publisher: str | None = None,
    seq: int | None = None,
    text: str = "line",
    message_id: str = "m",
) -> bytes:
    """A record as the disk receiver writes it."""
    log = ReceivedLog(
        text.encode(),
        text,
        True,
        Level.INFO,
        "web-1",
        "api",
        message_id,
        NOW,
        NOW,
        publisher=publisher,
        seq=seq,
        offset=offset,
    )
    return encode_record(log)


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "logs.history.jsonl"


# ---- remove_torn_tail ---------------------------------------------------------------------------
def test_a_torn_last_line_is_cut_back_to_the_last_newline(path: Path) -> None:
    whole = record(1) + record(2)
    path.write_bytes(whole + b'{"time":"2026-12-01T08:00')
    assert remove_torn_tail(path) == len(b'{"time":"2026-12-01T08:00')
    assert path.read_bytes() == whole


def test_a_file_holding_only_a_partial_line_becomes_empty(path: Path) -> None:
    path.write_bytes(b'{"time":null,"rec')
    assert remove_torn_tail(path) == 17
    assert path.read_bytes() == b""


def test_a_torn_line_longer_than_one_read_chunk_is_cut_whole(path: Path) -> None:
    whole = record(1)
    torn = b"x" * (200 * 1024)  # more than the 64 KiB the tail is read back in
    path.write_bytes(whole + torn)
    assert remove_torn_tail(path) == len(torn)
    assert path.read_bytes() == whole


def test_a_clean_file_is_left_untouched(path: Path) -> None:
    content = record(1) + record(2)
    path.write_bytes(content)
    before = path.stat()
    assert remove_torn_tail(path) == 0
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_an_empty_or_missing_file_has_no_torn_tail(path: Path) -> None:
    assert remove_torn_tail(path) == 0
    assert not path.exists()  # not created
    path.write_bytes(b"")
    assert remove_torn_tail(path) == 0


# ---- read_resume_point -----------------------------------------------------------------------
def test_the_newest_offset_and_each_publishers_highest_number_are_found(path: Path) -> None:
    path.write_bytes(
        record(10, "pub-a", 5)
        + record(11, "pub-b", 70)
        + record(12, "pub-a", 7)
        + record(13, "pub-a", 6)  # a resend, reordered: not the highest
        + record(14)  # a foreign publisher: no number
    )
    point = read_resume_point(path, backup_count=5)
    assert point.offset == 14
    assert point.message_id == "m"
    assert point.last_seq == {"pub-a": 7, "pub-b": 70}
    assert (point.torn_bytes, point.unreadable) == (0, 0)


def test_the_last_record_decides_the_offset_and_its_message_id(path: Path) -> None:
    """The newest, not the largest: a stream declared again starts over at 0."""
    path.write_bytes(
        record(500, "p", 1, message_id="a")
        + record(501, "p", 2, message_id="b")
        + record(0, "p", 3, message_id="c")
        + record(None, "p", 4, message_id="live")  # no offset: does not move it
    )
    point = read_resume_point(path, backup_count=1)
    assert (point.offset, point.message_id) == (0, "c")
    assert point.last_seq == {"p": 4}


def test_a_torn_tail_is_removed_and_counted_before_reading(path: Path) -> None:
    path.write_bytes(record(3, "p", 1) + record(4, "p", 2) + b'{"time":null,"received":"2026')
    point = read_resume_point(path, backup_count=1)
    assert point.torn_bytes == len(b'{"time":null,"received":"2026')
    assert point.offset == 4
    assert point.unreadable == 0
    assert path.read_bytes().endswith(b"\n")


@pytest.mark.parametrize("current", ["empty", "missing", "torn"])
def test_without_records_in_the_current_file_the_newest_rotated_one_decides(
    path: Path, current: str
) -> None:
    if current == "empty":
        path.write_bytes(b"")
    elif current == "torn":
        path.write_bytes(b'{"time":null')
    rotated(path, 1).write_bytes(record(40, "p", 9) + record(41, "p", 10))
    rotated(path, 2).write_bytes(record(30, "p", 1) + record(99, "q", 500))
    point = read_resume_point(path, backup_count=5)
    assert point.offset == 41
    assert point.last_seq == {"p": 10}  # .2 is not read: .1 had records
    assert point.torn_bytes == (12 if current == "torn" else 0)


def test_the_fallback_skips_empty_rotated_files_and_stops_at_backup_count(path: Path) -> None:
    rotated(path, 1).write_bytes(b"")
    rotated(path, 2).write_bytes(record(7))
    rotated(path, 3).write_bytes(record(1000))
    assert read_resume_point(path, backup_count=3).offset == 7
    assert read_resume_point(path, backup_count=1).offset is None


def test_the_current_file_wins_over_rotated_ones(path: Path) -> None:
    path.write_bytes(record(5, "p", 3))
    rotated(path, 1).write_bytes(record(4, "p", 2) + record(900, "q", 1))
    point = read_resume_point(path, backup_count=5)
    assert point.offset == 5
    assert point.last_seq == {"p": 3}


def test_nothing_on_disk_is_an_empty_resume_point(path: Path) -> None:
    point = read_resume_point(path, backup_count=5)
    assert point.offset is None
    assert point.message_id is None
    assert point.last_seq == {}
    assert (point.torn_bytes, point.unreadable) == (0, 0)


def test_live_records_without_an_offset_give_no_offset_but_their_numbers(path: Path) -> None:
    path.write_bytes(record(None, "p", 3) + record(None, "p", 4) + record(None))
    rotated(path, 1).write_bytes(record(77, "p", 1))
    point = read_resume_point(path, backup_count=5)
    assert point.offset is None  # the current file had records: no fallback to .1
    assert point.last_seq == {"p": 4}


def test_unreadable_lines_are_counted_and_skipped(path: Path) -> None:
    path.write_bytes(
        record(1, "p", 1)
        + b"not json at all\n"
        + b"[1, 2, 3]\n"  # JSON, but not a record
        + b'"a string"\n'
        + record(2, "p", 2)
        + b'{"offset": "3", "publisher": "p", "seq": "9"}\n'  # wrong types: ignored, readable
    )
    point = read_resume_point(path, backup_count=1)
    assert point.unreadable == 3
    assert point.offset == 2
    assert point.last_seq == {"p": 2}


def test_a_tail_beyond_tail_bytes_starts_at_a_full_record(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = b"".join(record(n, "p", n, text="old") for n in range(50))
    newest = record(100, "p", 100) + record(101, "q", 5)
    content = old + newest
    tail_bytes = len(newest) + 7  # starts 7 bytes before the end of an old record
    monkeypatch.setattr(resume_point, "TAIL_BYTES", tail_bytes)
    path.write_bytes(content)
    assert content[-tail_bytes:][6:7] == b"\n"  # the tail starts inside an old record
    point = read_resume_point(path, backup_count=1)
    assert point.unreadable == 0  # the cut record is not read as a broken line
    assert point.offset == 101
    assert point.last_seq == {"p": 100, "q": 5}  # only the records inside the tail


def test_a_tail_beyond_tail_bytes_ignores_records_before_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    early = record(500, "p", 500, text="early")  # before the tail: not read
    later = b"".join(record(n, "p", n) for n in range(10, 20))
    monkeypatch.setattr(resume_point, "TAIL_BYTES", len(later) + 3)
    path.write_bytes(early + later)
    point = read_resume_point(path, backup_count=1)
    assert point.offset == 19
    assert point.last_seq == {"p": 19}
    assert point.unreadable == 0


def test_a_newest_record_longer_than_tail_bytes_still_decides(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path.write_bytes(record(5, "p", 5) + record(6, "p", 6, text="y" * 400))
    monkeypatch.setattr(resume_point, "TAIL_BYTES", 200)
    point = read_resume_point(path, backup_count=1)
    assert point.offset == 6
    assert point.last_seq == {"p": 6}
