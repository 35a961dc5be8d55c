"""One safe output line per message: text or JSON, optional colour by level."""

from __future__ import annotations

from enum import StrEnum

from logcast.escaping import escape_text
from logcast.levels import Level
from logcast.log_record import encode_record, iso_ms
from logcast.wire_format import ReceivedLog


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class ColorMode(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


_RESET = "\x1b[0m"
_COLORS = {
    Level.DEBUG: "\x1b[2m",
    Level.INFO: "\x1b[32m",
    Level.WARNING: "\x1b[33m",
    Level.ERROR: "\x1b[31m",
    Level.CRITICAL: "\x1b[1;41;97m",
}


def use_color(mode: ColorMode, is_tty: bool, no_color_env: str | None) -> bool:
    """``always``/``never`` win; ``auto`` means a terminal and no NO_COLOR (https://no-color.org)."""
    if mode is ColorMode.ALWAYS:
        return True
    if mode is ColorMode.NEVER:
        return False
    return is_tty and not no_color_env


def format_text(log: ReceivedLog, color: bool) -> str:
    when = iso_ms(log.received_ms if log.sent_ms is None else log.sent_ms)
    level = f"{log.level.value.upper():<8}"
    if color:
        level = f"{_COLORS[log.level]}{level}{_RESET}"
    return (
        f"{when} {level} {escape_text(log.host)} {escape_text(log.app)}: {escape_text(log.text)}\n"
    )


def format_json(log: ReceivedLog) -> str:
    return encode_record(log).decode("ascii")
