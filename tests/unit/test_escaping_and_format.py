"""Terminal safety of the screen output and the level conventions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logcast.escaping import escape_text
from logcast.levels import Level, level_from_text, parse_level_name
from logcast.message import ReceivedLog
from logcast_screen_receiver.line_format import ColorMode, format_text, use_color

UNSAFE = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, 0x202E]}


@given(st.text())
def test_escaped_text_has_no_control_characters(text: str) -> None:
    assert not UNSAFE & set(escape_text(text))


@given(st.text(), st.text())
def test_escaping_is_injective(a: str, b: str) -> None:
    """Backslashes are escaped too, so an escaped sequence can't be forged by literal text."""
    if a != b:
        assert escape_text(a) != escape_text(b)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("\x1b[31m", "\\x1b[31m"),
        ("\r\x00\t", "\\r\\x00\\t"),
        ("\u009b", "\\x9b"),
        ("\u202e", "\\u202e"),
        ("back\\slash", "back\\\\slash"),
        ("héllo ✓", "héllo ✓"),
    ],
)
def test_escape_examples(raw: str, shown: str) -> None:
    assert escape_text(raw) == shown


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("info: Hello World!", Level.INFO),
        ("ERROR: boom", Level.ERROR),
        ("Warning:x", Level.WARNING),
        ("warn: legacy", Level.WARNING),
        ("  critical : spaced", Level.CRITICAL),
        ("debugging: not a level", None),
        ("no prefix", None),
        ("", None),
    ],
)
def test_level_from_text(text: str, level: Level | None) -> None:
    assert level_from_text(text) is level


@pytest.mark.parametrize(
    ("value", "level"),
    [("error", Level.ERROR), (b"DEBUG", Level.DEBUG), (42, None), (None, None), ("loud", None)],
)
def test_parse_level_name(value: object, level: Level | None) -> None:
    assert parse_level_name(value) is level


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
