"""Writes to stdout arrive whole and in order, and a full pipe cannot hold up a stop."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from logcast.errors import StorageError
from logcast_screen_receiver.stdout_writer import StdoutWriter


def test_a_slow_reader_gets_every_byte_in_order() -> None:
    read_end, write_end = os.pipe()
    data = bytes(range(256)) * 2000  # 512 KB: eight times a default pipe
    got = bytearray()

    def reader() -> None:
        while chunk := os.read(read_end, 7000):
            got.extend(chunk)
            time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    StdoutWriter(write_end, lambda: False).write(data)
    os.close(write_end)
    thread.join(10)
    os.close(read_end)
    assert bytes(got) == data


def test_a_full_pipe_gives_way_to_a_stop() -> None:
    read_end, write_end = os.pipe()
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(StorageError, match="stdout is not being read"):
        StdoutWriter(write_end, stop.is_set).write(b"x" * 200_000)
    assert time.monotonic() - started < 1.0
    os.close(read_end)
    os.close(write_end)


def test_a_regular_file_is_written_at_once(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    StdoutWriter(fd, lambda: True).write(b"line\n" * 10_000)
    os.close(fd)
    assert (tmp_path / "out").read_bytes() == b"line\n" * 10_000
