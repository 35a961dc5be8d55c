"""Make untrusted text safe for a terminal: one visible line, no escape sequences."""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
# Characters that move the cursor, start escape sequences or reorder text (Trojan Source).
_CONTROL = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_INVISIBLE = [0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]


def _escape_for(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = {code: _escape_for(code) for code in [*_CONTROL, *_INVISIBLE, ord("\\")]}


def escape_text(text: str) -> str:
    return text.translate(_TABLE)
