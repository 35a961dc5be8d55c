"""Split untrusted stdin bytes into lines: bounded size, visible truncation, never a crash."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

BATCH_LINES = 512


@dataclass
class InputStats:
    lines: int = 0
    truncated: int = 0
    invalid_utf8: int = 0
    cut_at_stop: int = 0


def truncation_marker(dropped: int) -> bytes:
    return f" [logcast: truncated {dropped} bytes]".encode()


# A stop that lands mid-line: what was read of it is still sent, and says so.
CUT_AT_STOP_MARKER = b" [logcast: cut at stop]"


class LineSplitter:
    """Feed chunks, get complete lines (without their line ending), at most ``max_bytes`` each."""

    def __init__(self, max_bytes: int, stats: InputStats) -> None:
        self.max_bytes = max_bytes
        self.stats = stats
        self._partial = bytearray()
        self._dropped = 0

    def _append(self, piece: bytes | memoryview) -> None:
        room = self.max_bytes - len(self._partial)
        if len(piece) > room:
            self._dropped += len(piece) - max(room, 0)
            piece = piece[: max(room, 0)]
        self._partial += piece

    def _finish_line(self) -> bytes:
        line = bytes(self._partial)
        if line.endswith(b"\r") and not self._dropped:
            line = line[:-1]
        if self._dropped:
            self.stats.truncated += 1
            line += truncation_marker(self._dropped)
        self._partial.clear()
        self._dropped = 0
        self.stats.lines += 1
        return line

    def feed(self, chunk: bytes) -> list[bytes]:
        lines = []
        view = memoryview(chunk)
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            if not self._partial and not self._dropped and end - start <= self.max_bytes:
                line = chunk[start:end]  # fast path: the whole line sits in this chunk
                if line.endswith(b"\r"):
                    line = line[:-1]
                self.stats.lines += 1
                lines.append(line)
            else:
                self._append(view[start:end])
                lines.append(self._finish_line())
            start = end + 1
        if start < len(chunk):
            self._append(view[start:])
        return lines

    def finish(self, *, stopped: bool = False) -> list[bytes]:
        """At end of input, an unterminated last line still counts; cut short by a stop, it is
        marked as such."""
        if not self._partial and not self._dropped:
            return []
        line = self._finish_line()
        if stopped:
            self.stats.cut_at_stop += 1
            line += CUT_AT_STOP_MARKER
        return [line]


def decode_line(raw: bytes, stats: InputStats) -> str:
    """Invalid UTF-8 becomes U+FFFD replacement characters (counted), never an error."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.invalid_utf8 += 1
        return raw.decode("utf-8", "replace")


def read_lines(
    chunks: Iterable[bytes],
    max_bytes: int,
    stats: InputStats,
    stopped: Callable[[], bool] = lambda: False,
) -> Iterator[list[str]]:
    """Batches of decoded lines, one batch per chunk read (so a slow pipe is sent promptly).

    ``stopped`` tells, once ``chunks`` ends, whether it was a stop rather than end of input."""
    splitter = LineSplitter(max_bytes, stats)
    for chunk in chunks:
        raw_lines = splitter.feed(chunk)
        for start in range(0, len(raw_lines), BATCH_LINES):
            yield [decode_line(raw, stats) for raw in raw_lines[start : start + BATCH_LINES]]
    tail = splitter.finish(stopped=stopped())
    if tail:
        yield [decode_line(raw, stats) for raw in tail]
