"""The history stream: a RabbitMQ stream ``<exchange>.history`` bound to the fanout exchange.

Live receivers keep their temporary queues; a receiver that replays (``--since``) or archives
without gaps (``--resume``) reads this stream instead. Here: its name and declaration, parsing
where to start reading, and a ``HistoryCursor`` that outlives sessions, so a reconnect carries
on after the last offset handed to the sink rather than where the first session started.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

# Read by the broker on every stream delivery; it overwrites one a publisher set.
OFFSET_HEADER = "x-stream-offset"
# A timestamp attaches at chunk granularity, and publisher and broker clocks may differ:
# attach this much earlier and filter by the publisher's own time.
_ATTACH_MARGIN = timedelta(seconds=10)

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# x-max-age as the broker takes it: a number and one unit (years, months, days, h, m, s).
MAX_AGE_PATTERN = r"^[1-9][0-9]*(Y|M|D|h|m|s)$"

Named = Literal["first", "next", "last"]
StreamStart = Named | int | datetime


def history_queue(exchange: str) -> str:
    return f"{exchange}.history"


def declare_arguments(max_age: str, max_bytes: int) -> dict[str, Any]:
    """How a receiver declares the stream where no definitions did (the same as compose's)."""
    return {"x-queue-type": "stream", "x-max-age": max_age, "x-max-length-bytes": max_bytes}


def parse_duration(text: str) -> timedelta | None:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m``; None if it is not one."""
    match = _DURATION.match(text)
    if not text or match is None:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time; without a zone it is local time, as ``docker logs --since`` reads it."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.astimezone()


def check_since(text: str) -> str:
    if text != "all" and parse_duration(text) is None and parse_time(text) is None:
        raise ValueError(
            "expected a duration (90s, 15m, 2h, 1d, 1h30m), an ISO time "
            "(2026-12-01T08:00:00Z) or 'all'"
        )
    return text


def check_resume_from(text: str) -> str:
    if text not in ("next", "first") and parse_time(text) is None:
        raise ValueError("expected 'next', 'first' or an ISO time (2026-12-01T08:00:00Z)")
    return text


def since_start(text: str, now: datetime) -> tuple[StreamStart, int | None]:
    """Where ``--since`` attaches, and the earliest publisher time (ms) it shows."""
    if text == "all":
        return "first", None
    duration = parse_duration(text)
    moment = now - duration if duration is not None else parse_time(text)
    assert moment is not None, "validated by check_since"
    return moment - _ATTACH_MARGIN, int(moment.timestamp() * 1000)


def resume_start(text: str) -> tuple[StreamStart, int | None]:
    """Where ``--resume-from`` attaches when nothing is on disk yet."""
    if text in ("next", "first"):
        return text, None  # type: ignore[return-value]  # narrowed by the membership test
    moment = parse_time(text)
    assert moment is not None, "validated by check_resume_from"
    return moment - _ATTACH_MARGIN, int(moment.timestamp() * 1000)


def offset_argument(start: StreamStart) -> Any:
    """The ``x-stream-offset`` consumer argument (pika sends a datetime as a timestamp)."""
    if isinstance(start, datetime):
        return start.astimezone(UTC)
    return start


@dataclass
class HistoryCursor:
    """Where a stream consumer is: it outlives sessions, so a reconnect resumes after the last
    offset handed to the sink, never from the configured start again."""

    queue: str
    start: StreamStart
    since_ms: int | None = None  # hide what a publisher sent before this (ms since the epoch)
    declare: dict[str, Any] = field(default_factory=dict)  # used only if the stream is missing
    position: int | None = None  # offset of the last delivery handed over (or recovered)
    position_id: str | None = None  # its message id: the check that the stream still holds it
    skipped: int = 0  # deliveries before --since/--resume-from, or already written
    tail: int | None = None  # an offset in the stream's last chunk, as last sampled

    def attach_at(self) -> Any:
        if self.position is not None:
            return self.position + 1
        return offset_argument(self.start)

    @property
    def lag(self) -> int:
        """Offsets between our position and the stream's last chunk (0 when unknown)."""
        if self.tail is None:
            return 0
        return max(0, self.tail - (self.position if self.position is not None else -1))


def missing_queue(reason: Any) -> bool:
    """A 404 for a queue that does not exist, rather than one whose node is down or still
    starting (after a broker restart a stream answers 404 for a moment; that is not absence)."""
    return getattr(reason, "reply_code", 0) == 404 and "no queue" in str(
        getattr(reason, "reply_text", "")
    )


def on_throwaway_channel(
    connection: Any,
    operation: Callable[[Any, Callable[[Any], None]], None],
    on_done: Callable[[bool, Any], None],
) -> None:
    """Run one operation that may fail on a channel of its own (a failure closes the channel it
    happens on). ``operation(channel, ok)`` gets ``ok`` as its reply callback; ``on_done`` gets
    (succeeded, the reason the channel closed)."""
    succeeded: list[bool] = []

    def on_open(channel: Any) -> None:
        def ok(_frame: Any) -> None:
            succeeded.append(True)
            channel.close()

        channel.add_on_close_callback(lambda _channel, reason: on_done(bool(succeeded), reason))
        operation(channel, ok)

    connection.channel(on_open_callback=on_open)


def bind_history(connection: Any, exchange: str, on_done: Callable[[str], None]) -> None:
    """Bind ``<exchange>.history`` to the exchange on a throwaway channel. ``on_done`` gets
    "bound", "absent" (no stream: nothing to do), "unavailable" (it exists but its node is down
    or starting: try again), "refused" (this user may not bind it) or "failed" (the connection
    went, say)."""
    queue = history_queue(exchange)

    def outcome(bound: bool, reason: Any) -> None:
        code = getattr(reason, "reply_code", 0)
        if bound:
            on_done("bound")
        elif code == 404:
            on_done("absent" if missing_queue(reason) else "unavailable")
        else:
            on_done("refused" if code == 403 else "failed")

    on_throwaway_channel(
        connection, lambda channel, ok: channel.queue_bind(queue, exchange, callback=ok), outcome
    )
