"""Log levels, their order, and the tutorial's ``LEVEL: text`` convention."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {level: i for i, level in enumerate(Level)}
_BY_NAME = {level.value: level for level in Level} | {
    "warn": Level.WARNING,
    "fatal": Level.CRITICAL,
}
_PREFIX_SCAN = 32  # a level prefix sits at the very start; do not scan long bodies


def parse_level_name(value: object) -> Level | None:
    """A level from a header value of any AMQP type; None when it names no level."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return _BY_NAME.get(value.strip().lower())


def level_from_text(text: str) -> Level | None:
    """The level named by a ``LEVEL: text`` prefix (any case), as in the tutorial's emit_log.py."""
    head, sep, _ = text[:_PREFIX_SCAN].partition(":")
    if not sep:
        return None
    return _BY_NAME.get(head.strip().lower())
