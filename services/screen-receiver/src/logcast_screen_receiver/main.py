"""screen-receiver: print every log line broadcast on the exchange to stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_settings import SettingsConfigDict

from logcast.consuming import Consumer
from logcast.history_stream import (
    HistoryCursor,
    check_since,
    declare_arguments,
    history_queue,
    since_start,
)
from logcast.levels import Level
from logcast.metrics import Kind, Sample
from logcast.service_main import ServiceContext, run_service
from logcast.settings import LevelSetting, ReceiverSettings
from logcast.wire_format import ReceivedLog
from logcast_screen_receiver.line_format import (
    ColorMode,
    OutputFormat,
    format_json,
    format_text,
    use_color,
)
from logcast_screen_receiver.stdout_writer import StdoutWriter

SERVICE = "screen-receiver"


class ScreenSettings(ReceiverSettings):
    """Print every message on the exchange to stdout, one escaped line each."""

    model_config = SettingsConfigDict(cli_prog_name=SERVICE)

    min_level: LevelSetting = Field(Level.DEBUG, description="Hide messages below this level")
    color: ColorMode = Field(
        ColorMode.AUTO, description="Colour levels: auto = on a terminal unless NO_COLOR is set"
    )
    format: OutputFormat = Field(OutputFormat.TEXT, description="Output line format")
    since: Annotated[str | None, AfterValidator(lambda v: check_since(v) if v else None)] = Field(
        None,
        description="Replay the history stream from then and keep following it: a duration "
        "(15m, 2h, 1d), an ISO time, or all; unset: live lines only",
    )


class ScreenSink:
    """Buffers lines and writes them in one go per batch of deliveries (see StdoutWriter)."""

    def __init__(
        self,
        fd: int,
        fmt: OutputFormat,
        color: bool,
        min_level: Level,
        stopped: Callable[[], bool],
    ) -> None:
        self.out = StdoutWriter(fd, stopped)
        self.fmt = fmt
        self.color = color
        self.min_rank = min_level.rank
        self.hidden = 0
        self._buffer: list[str] = []

    def write(self, log: ReceivedLog) -> None:
        if log.level.rank < self.min_rank:
            self.hidden += 1
            return
        if self.fmt is OutputFormat.JSON:
            self._buffer.append(format_json(log))
        else:
            self._buffer.append(format_text(log, self.color))

    def flush(self) -> None:
        if not self._buffer:
            return
        data = "".join(self._buffer).encode("utf-8")
        self._buffer.clear()
        self.out.write(data)

    def tick(self) -> None:
        """Nothing waits on a timer: every batch is flushed before it is acked."""


def receive(settings: ScreenSettings, context: ServiceContext) -> None:
    fd = sys.stdout.fileno()
    color = use_color(settings.color, os.isatty(fd), os.environ.get("NO_COLOR"))
    stop = context.stop
    sink = ScreenSink(fd, settings.format, color, settings.min_level, lambda: stop.requested)
    context.metrics.add(
        lambda: [Sample("hidden", Kind.COUNTER, "Below --min-level, not shown", sink.hidden)]
    )
    cursor = None
    if settings.since is not None:
        start, since_ms = since_start(settings.since, datetime.now(UTC))
        cursor = HistoryCursor(
            queue=history_queue(settings.exchange),
            start=start,
            since_ms=since_ms,
            declare=declare_arguments(settings.history_max_age, settings.history_max_bytes),
        )
    Consumer(settings, context, sink, cursor=cursor).run()


def main(argv: list[str] | None = None) -> int:
    return run_service(SERVICE, ScreenSettings, argv, receive)


def run() -> None:
    sys.exit(main())
