"""Terminal safety: escaped text shows every character and can run no escape sequence."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logcast.escaping import escape_text

# Unicode's Bidi_Control property, from PropList.txt (Unicode 15.1), spelled out independently.
BIDI_CONTROL = [
    0x061C,  # ARABIC LETTER MARK
    0x200E,  # LEFT-TO-RIGHT MARK
    0x200F,  # RIGHT-TO-LEFT MARK
    *range(0x202A, 0x202F),  # LRE, RLE, PDF, LRO, RLO
    *range(0x2066, 0x206A),  # LRI, RLI, FSI, PDI
]
UNSAFE = {chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *BIDI_CONTROL]}


@given(st.text())
def test_escaped_text_has_no_control_characters(text: str) -> None:
    assert not UNSAFE & set(escape_text(text))


@pytest.mark.parametrize("code", BIDI_CONTROL, ids=hex)
def test_every_bidi_control_character_is_escaped(code: int) -> None:
    assert escape_text(f"a{chr(code)}b") == f"a\\u{code:04x}b"


def test_bidi_control_list_covers_the_explicit_formatting_classes() -> None:
    """A cross-check of the list above against Python's Unicode database."""
    explicit = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}
    found = [c for c in range(0x110000) if unicodedata.bidirectional(chr(c)) in explicit]
    assert set(found) | {0x061C, 0x200E, 0x200F} == set(BIDI_CONTROL)


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
