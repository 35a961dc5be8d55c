"""Where the shared AMQP code logs its own events (connection lost, retrying, ready...).

In the services, structlog as configured by logging_setup. On the logging handler's publishing
thread, never the application's own logging or stdout: warnings and errors only, as key=value
lines on stderr, prefixed ``logcast handler:``.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import MutableMapping
from typing import Any

import structlog

_handler_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def _to_stderr(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> str:
    return "logcast handler: " + structlog.processors.KeyValueRenderer(
        key_order=["event"], drop_missing=True
    )(_logger, _method, event)


class _StderrLogger:
    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = error = critical = exception = fatal = msg


_handler_logger = structlog.wrap_logger(
    _StderrLogger(),
    processors=[structlog.processors.add_log_level, _to_stderr],
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
)


def run_quietly(thread: threading.Thread) -> None:
    """Route what ``thread`` logs through get_logger to stderr (the logging handler's thread)."""
    _handler_threads.add(thread)


def get_logger() -> Any:
    if threading.current_thread() in _handler_threads:
        return _handler_logger
    return structlog.get_logger()
