"""Level names in headers, and the tutorial's ``LEVEL: text`` prefix."""

from __future__ import annotations

import pytest

from logcast.levels import Level, level_from_text, parse_level_name


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
