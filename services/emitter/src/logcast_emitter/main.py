"""emitter: publish log lines to the fanout exchange, with publisher confirms."""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterable, Iterator
from typing import Self

import structlog
from pydantic import Field, model_validator
from pydantic_settings import CliPositionalArg, SettingsConfigDict

from logcast.errors import UndeliveredError, UsageError
from logcast.levels import Level, level_from_text
from logcast.metrics import Kind, Sample
from logcast.publishing import LineBatches, Publisher, PublishReport
from logcast.service_main import ServiceContext, run_service
from logcast.settings import LevelSetting, PublisherSettings
from logcast.shutdown import StopSignal
from logcast_emitter.demo_lines import paced_demo
from logcast_emitter.line_reader import InputStats, read_lines

SERVICE = "emitter"
DEFAULT_MESSAGE = "info: Hello World!"
_READ_BYTES = 64 * 1024


class EmitterSettings(PublisherSettings):
    """Publish log lines: the words given, every line of stdin, or a demo stream."""

    model_config = SettingsConfigDict(cli_prog_name=SERVICE)

    level: LevelSetting = Field(
        Level.INFO, description="Level of lines that carry no 'LEVEL: ' prefix"
    )
    app_id: str = Field(SERVICE, min_length=1, max_length=255, description="AMQP app_id sent")
    stdin: bool = Field(False, description="Publish every line of stdin until EOF")
    demo: bool = Field(False, description="Publish generated demo lines")
    rate: float = Field(5.0, gt=0, le=1_000_000, description="Demo lines per second")
    count: int | None = Field(None, ge=1, description="Demo lines in all; unset: forever")
    max_message_bytes: int = Field(
        1024 * 1024,
        ge=64,
        le=64 * 1024 * 1024,
        description="Longer stdin lines are cut here and marked '[logcast: truncated N bytes]'",
    )
    message: CliPositionalArg[list[str]] = Field(
        default_factory=list, description=f"Words of one message (default: '{DEFAULT_MESSAGE}')"
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if sum([self.stdin, self.demo, bool(self.message)]) > 1:
            raise ValueError("give MESSAGE words, --stdin or --demo, not more than one")
        return self


def stdin_fd() -> int:
    """The descriptor of standard input; UsageError when there is none (e.g. ``<&-``)."""
    try:
        fd = sys.stdin.fileno()
        os.fstat(fd)
    except (AttributeError, ValueError, OSError):
        raise UsageError("--stdin given, but standard input is closed") from None
    return fd


def stdin_chunks(fd: int, stop: StopSignal) -> Iterator[bytes]:
    """What can be read now, chunk by chunk, until EOF; nothing more is read once stopped, so
    every line taken from the pipe is published or counted as unsent."""
    while not stop.requested:
        readable, _, _ = select.select([fd], [], [], 0.1)
        if not readable:
            continue
        chunk = os.read(fd, _READ_BYTES)
        if not chunk:
            return
        yield chunk


def text_batches(
    settings: EmitterSettings, context: ServiceContext, stats: InputStats
) -> Iterable[list[str]]:
    if settings.stdin:
        stop = context.stop
        chunks = stdin_chunks(stdin_fd(), stop)
        return read_lines(chunks, settings.max_message_bytes, stats, lambda: stop.requested)
    if settings.demo:
        stop = context.stop
        return paced_demo(settings.rate, settings.count, stop.sleep, lambda: stop.requested)
    return [[" ".join(settings.message) or DEFAULT_MESSAGE]]


def with_levels(batches: Iterable[list[str]], default: Level) -> LineBatches:
    """Each line's level: its own ``LEVEL:`` prefix, else the default."""
    for batch in batches:
        yield [(text, level_from_text(text) or default) for text in batch]


def emit(settings: EmitterSettings, context: ServiceContext) -> None:
    stats = InputStats()
    context.metrics.add(lambda: input_samples(stats))
    publisher = Publisher(settings, context, app_id=settings.app_id)
    report = publisher.run(with_levels(text_batches(settings, context, stats), settings.level))
    log_summary(report, stats, settings.stdin)
    if report.error is not None:
        raise report.error
    if report.unconfirmed:
        raise UndeliveredError(f"{report.unconfirmed} messages were not confirmed by the broker")
    # Generated demo lines left over at a stop are not anybody's data; input lines are.
    if report.unsent and not settings.demo:
        raise UndeliveredError(f"{report.unsent} input lines were read but never published")


def input_samples(stats: InputStats) -> list[Sample]:
    return [
        Sample("lines_read", Kind.COUNTER, "Lines read from stdin", stats.lines),
        Sample("truncated", Kind.COUNTER, "Lines cut at --max-message-bytes", stats.truncated),
        Sample("invalid_utf8", Kind.COUNTER, "Lines with bytes replaced", stats.invalid_utf8),
    ]


def log_summary(report: PublishReport, stats: InputStats, stdin: bool) -> None:
    """Every line read is either published (at least once) or unsent: read = published + unsent."""
    counts = report.counts
    structlog.get_logger().info(
        "emitter.done",
        **({"read": stats.lines} if stdin else {}),
        published=counts.published,
        confirmed=counts.confirmed,
        unroutable=counts.unroutable,
        republished=counts.republished,
        nacked=counts.nacked,
        unconfirmed=report.unconfirmed,
        unsent=report.unsent,
        truncated=stats.truncated,
        invalid_utf8=stats.invalid_utf8,
        cut_at_stop=stats.cut_at_stop,
    )


def main(argv: list[str] | None = None) -> int:
    return run_service(SERVICE, EmitterSettings, argv, emit)


def run() -> None:
    sys.exit(main())
