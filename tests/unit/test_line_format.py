"""The screen receiver's output line: one line, all fields, colour only around the level."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logcast.levels import Level
from logcast.wire_format import ReceivedLog
from logcast_screen_receiver.line_format import ColorMode, format_text, use_color


def _log(text: str, level: Level = Level.INFO) -> ReceivedLog:
    ms = int(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC).timestamp() * 1000)
    return ReceivedLog(text.encode(), text, True, level, "web-1", "api", "id", ms, ms)


def test_text_line_is_one_line_with_all_fields() -> None:
    line = format_text(_log("two\nlines", Level.ERROR), color=False)
    assert line == "2026-01-02T03:04:05.678Z ERROR    web-1 api: two\\nlines\n"


def test_colour_wraps_only_the_level() -> None:
    line = format_text(_log("x", Level.WARNING), color=True)
    assert line == "2026-01-02T03:04:05.678Z \x1b[33mWARNING \x1b[0m web-1 api: x\n"


@pytest.mark.parametrize(
    ("mode", "tty", "no_color", "expected"),
    [
        (ColorMode.AUTO, True, None, True),
        (ColorMode.AUTO, True, "1", False),
        (ColorMode.AUTO, False, None, False),
        (ColorMode.ALWAYS, False, "1", True),
        (ColorMode.NEVER, True, None, False),
    ],
)
def test_use_color(mode: ColorMode, tty: bool, no_color: str | None, expected: bool) -> None:
    assert use_color(mode, tty, no_color) is expected
