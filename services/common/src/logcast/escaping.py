"""Make untrusted text safe for a terminal: one visible line, no escape sequences, no reordering."""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
# C0, DEL and C1: they move the cursor or start escape sequences.
_CONTROL = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
# Line and paragraph separators: an editor or viewer may break the line there.
_SEPARATORS = [0x2028, 0x2029]
# Unicode's Bidi_Control property (PropList.txt): marks, embeddings, overrides and isolates.
# Each can reorder how the rest of the line is shown (Trojan Source).
BIDI_CONTROL = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))


def _escape_for(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = {code: _escape_for(code) for code in [*_CONTROL, *_SEPARATORS, *BIDI_CONTROL, ord("\\")]}


def escape_text(text: str) -> str:
    return text.translate(_TABLE)
