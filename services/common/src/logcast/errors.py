"""The user-facing error hierarchy and the exit code each one maps to."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (README: "Exit codes")."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    BROKER_UNREACHABLE = 3
    ACCESS_REFUSED = 4
    STORAGE = 5
    UNDELIVERED = 6


class LogcastError(Exception):
    """An error with one user-facing line and a documented exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InternalError(LogcastError):
    """A bug surfaced inside an I/O callback; the traceback has been logged."""


class UsageError(LogcastError):
    exit_code = ExitCode.USAGE


class BrokerUnreachableError(LogcastError):
    exit_code = ExitCode.BROKER_UNREACHABLE


class AccessRefusedError(LogcastError):
    exit_code = ExitCode.ACCESS_REFUSED


class StorageError(LogcastError):
    exit_code = ExitCode.STORAGE


class UndeliveredError(LogcastError):
    exit_code = ExitCode.UNDELIVERED


class ConnectionLostError(Exception):
    """A session ended because the link to the broker failed; the caller may reconnect."""

    def __init__(self, reason: str, *, was_ready: bool, ready_seconds: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.was_ready = was_ready
        self.ready_seconds = ready_seconds  # how long it had been ready when it was lost
