"""The shared shape of a service's ``main``: settings, logging, signals, errors to exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from logcast import pika_internals
from logcast.errors import ExitCode, LogcastError
from logcast.logging_setup import configure_logging
from logcast.settings import SettingsT, load_settings
from logcast.shutdown import StopSignal


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """What every part of a running service shares: its name and its stop signal."""

    service: str
    stop: StopSignal


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
        body(settings, ServiceContext(service, stop))
    except LogcastError as error:
        print(f"{service}: error: {error.message}", file=sys.stderr, flush=True)
        return int(error.exit_code)
    except Exception:  # a bug, not a user error: keep the traceback
        structlog.get_logger().exception("crashed")
        return int(ExitCode.INTERNAL)
    return int(ExitCode.OK)
