"""Splitting untrusted stdin: chunk boundaries never matter, sizes are bounded and marked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logcast_emitter.line_reader import InputStats, LineSplitter, decode_line, read_lines


def split_all(data: bytes, cuts: list[int], max_bytes: int) -> tuple[list[bytes], InputStats]:
    stats = InputStats()
    splitter = LineSplitter(max_bytes, stats)
    points = sorted({min(c, len(data)) for c in cuts})
    out: list[bytes] = []
    start = 0
    for point in [*points, len(data)]:
        out += splitter.feed(data[start:point])
        start = point
    return out + splitter.finish(), stats


def reference(data: bytes, max_bytes: int) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    result = []
    for line in lines:
        if len(line) > max_bytes:
            result.append(
                line[:max_bytes] + f" [logcast: truncated {len(line) - max_bytes} bytes]".encode()
            )
        else:
            result.append(line.removesuffix(b"\r"))
    return result


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8), st.integers(1, 40))
def test_split_points_do_not_change_the_lines(data: bytes, cuts: list[int], max_bytes: int) -> None:
    lines, stats = split_all(data, cuts, max_bytes)
    assert lines == reference(data, max_bytes)
    assert stats.lines == len(lines)
    assert stats.truncated == sum(1 for line in lines if b"[logcast: truncated" in line)


def test_crlf_nul_and_unterminated_last_line() -> None:
    lines, _ = split_all(b"a\r\nb\x00c\nlast", [2, 5], 100)
    assert lines == [b"a", b"b\x00c", b"last"]


def test_invalid_utf8_is_replaced_and_counted() -> None:
    stats = InputStats()
    assert decode_line(b"ok \xff\xfe", stats) == "ok \ufffd\ufffd"
    assert stats.invalid_utf8 == 1


def test_huge_line_is_cut_without_holding_it_in_memory() -> None:
    stats = InputStats()
    chunks = [b"y" * 65536 for _ in range(160)] + [b"\nnext\n"]  # a 10 MiB line
    batches = list(read_lines(iter(chunks), 1024, stats))
    lines = [line for batch in batches for line in batch]
    assert lines == ["y" * 1024 + f" [logcast: truncated {160 * 65536 - 1024} bytes]", "next"]
    assert stats.truncated == 1


def test_a_line_cut_by_a_stop_is_sent_marked() -> None:
    stats = InputStats()
    batches = list(read_lines([b"whole\nhal"], 100, stats, stopped=lambda: True))
    assert batches == [["whole"], ["hal [logcast: cut at stop]"]]
    assert (stats.lines, stats.cut_at_stop) == (2, 1)
    at_eof = list(read_lines([b"whole\nhal"], 100, InputStats()))
    assert at_eof == [["whole"], ["hal"]]
