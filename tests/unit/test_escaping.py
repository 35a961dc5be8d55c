"""Terminal safety: escaped text shows every character and can run no escape sequence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logcast.escaping import escape_text

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
