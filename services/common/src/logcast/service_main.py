"""The shared shape of a service's ``main``: settings, logging, signals, errors to exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from logcast import pika_internals
from logcast.errors import ExitCode, LogcastError, UsageError
from logcast.logging_setup import configure_logging
from logcast.metrics import MetricsRegistry
from logcast.settings import SettingsT, load_settings
from logcast.shutdown import StopSignal


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """What every part of a running service shares: its name, stop signal and metrics."""

    service: str
    stop: StopSignal
    metrics: MetricsRegistry = field(default_factory=lambda: MetricsRegistry("logcast"))


def run_service(
    service: str,
    settings_cls: type[SettingsT],
    argv: Sequence[str] | None,
    body: Callable[[SettingsT, ServiceContext], None],
) -> int:
    """Run ``body``; a LogcastError becomes one line on stderr and its documented exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        settings = load_settings(settings_cls, args)
        configure_logging(settings.diagnostics_level.value, service=service)
        pika_internals.install()  # once per process, before the first connection
        stop = StopSignal()
        stop.install()
        metrics = MetricsRegistry(service)
        if settings.metrics_port:
            try:
                metrics.serve(settings.metrics_port)
            except OSError as error:
                raise UsageError(
                    f"cannot serve metrics on port {settings.metrics_port}: "
                    f"{error.strerror or error}"
                ) from None
        body(settings, ServiceContext(service, stop, metrics))
    except LogcastError as error:
        print(f"{service}: error: {error.message}", file=sys.stderr, flush=True)
        return int(error.exit_code)
    except Exception:  # a bug, not a user error: keep the traceback
        structlog.get_logger().exception("crashed")
        return int(ExitCode.INTERNAL)
    return int(ExitCode.OK)
