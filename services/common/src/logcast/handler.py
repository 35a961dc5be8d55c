"""LogcastHandler: a stdlib ``logging.Handler`` that publishes records to logcast.

``emit()`` formats the record, encodes it (the publisher's sequence number is assigned here, so a
record the buffer drops is a gap that every receiver counts as missed) and appends it to a bounded
buffer; it never waits for the broker. One background thread per process owns a pika connection
and runs the emitter's own Publisher: confirms, ``mandatory``, reconnects across the nodes of the
URL list, and republishing what was unconfirmed. A child made by ``fork`` starts its own thread and
connection at its first record; it never touches the parent's socket.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from logcast.diagnostics import run_quietly
from logcast.errors import LogcastError
from logcast.levels import Level
from logcast.metrics import MetricsRegistry
from logcast.publishing import Publisher, PublishReport
from logcast.service_main import ServiceContext
from logcast.settings import PublisherSettings, describe_validation_error
from logcast.shutdown import StopSignal
from logcast.wire_format import MessageEncoder, OutboundMessage

_DROP_REPORT_SECONDS = 10.0
_FLUSH_POLL_SECONDS = 0.01
_JUST_BEFORE_SECONDS = 0.5


def level_of(levelno: int) -> Level:
    """A stdlib level number as logcast's level: custom levels fall to the one below."""
    if levelno >= logging.CRITICAL:
        return Level.CRITICAL
    if levelno >= logging.ERROR:
        return Level.ERROR
    if levelno >= logging.WARNING:
        return Level.WARNING
    if levelno >= logging.INFO:
        return Level.INFO
    return Level.DEBUG


class RecordBuffer:
    """The hand-over from ``emit()`` to the publishing thread: bounded, and when full the oldest
    record goes (and is counted). Also the Publisher's feed.

    The publisher's very first record is kept until it is taken: a receiver counts gaps from the
    first number it sees, so with it sent, records dropped while the broker was still out of reach
    count as missed too."""

    def __init__(self, capacity: int, wake: Callable[[], None]) -> None:
        self.capacity = capacity
        self._wake = wake
        self._items: collections.deque[OutboundMessage] = collections.deque()
        self._lock = threading.Lock()
        self._finishing = False
        self.exhausted = False
        self.accepted = 0  # records handed in, dropped ones included
        self._first_waiting = True
        self.dropped = 0  # oldest records pushed out by newer ones
        self.error: LogcastError | None = None  # a feed of records cannot fail

    def put(self, message: OutboundMessage) -> bool:
        """Queue ``message``; True when an older record had to go to make room."""
        with self._lock:
            full = len(self._items) >= self.capacity
            if full:
                if self._first_waiting and self.capacity > 1:
                    first = self._items.popleft()
                    self._items.popleft()
                    self._items.appendleft(first)
                else:
                    self._items.popleft()
                self.dropped += 1
            self._items.append(message)
            self.accepted += 1
        self._wake()
        return full

    def drain(self, limit: int) -> list[OutboundMessage]:
        with self._lock:
            count = min(limit, len(self._items))
            taken = [self._items.popleft() for _ in range(count)]
            if taken:
                self._first_waiting = False
            if self._finishing and not self._items:
                self.exhausted = True
        return taken

    def finish(self) -> None:
        """No more records: the publisher ends once it has sent and settled the rest."""
        self._finishing = True
        self._wake()

    def close(self) -> None:
        self._finishing = True

    def __len__(self) -> int:
        return len(self._items)


class _Worker:
    """The publishing thread of one process, and what it shares with ``emit()``."""

    def __init__(self, handler: LogcastHandler) -> None:
        self.stop = StopSignal()
        context = ServiceContext("logcast-handler", self.stop, MetricsRegistry("logcast-handler"))
        self.publisher = Publisher(
            handler.settings,
            context,
            app_id=handler.app_id,
            encoder=MessageEncoder(socket.gethostname(), handler.app_id, preencoded=False),
            feed=lambda wake: RecordBuffer(handler.capacity, wake),
            drain_seconds=handler.close_timeout,
        )
        feed = self.publisher.feed
        assert isinstance(feed, RecordBuffer)
        self.buffer: RecordBuffer = feed
        self.encoder: MessageEncoder = self.publisher.encoder
        self.report: PublishReport | None = None
        self.thread = threading.Thread(target=self._run, name="logcast-handler", daemon=True)
        run_quietly(self.thread)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.report = self.publisher.run_feed()
        except Exception as error:  # never into the application's logging: that is us
            print(f"logcast handler: publishing stopped: {error!r}", file=sys.stderr, flush=True)
            return
        if self.report.error is not None:
            # Refused credentials or permissions: records from now on are dropped, and counted.
            print(
                f"logcast handler: publishing stopped: {self.report.error.message}",
                file=sys.stderr,
                flush=True,
            )

    @property
    def handed_in(self) -> int:
        return self.buffer.accepted

    def settled(self, target: int) -> bool:
        counts = self.publisher.ledger.counts
        return counts.confirmed + self.buffer.dropped >= target


class LogcastHandler(logging.Handler):
    """Publishes log records to logcast's fanout exchange without blocking the caller.

    Unset arguments come from the services' LOGCAST_* variables and secret file
    (LOGCAST_AMQP_URL, a comma-separated list for a cluster; LOGCAST_EXCHANGE, default ``logs``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        exchange: str | None = None,
        app_id: str | None = None,
        level: int | str = logging.NOTSET,
        buffer: int = 10_000,
        close_timeout: float = 2.0,
    ) -> None:
        super().__init__(level)
        if buffer < 1:
            raise ValueError(f"LogcastHandler: buffer must be at least 1 (got {buffer})")
        if close_timeout < 0:
            raise ValueError(f"LogcastHandler: close_timeout must be >= 0 (got {close_timeout})")
        # An application's handler waits for its broker however long it takes (the services'
        # default gives up after 60 s); LOGCAST_RETRY_TIMEOUT still applies when set.
        overrides: dict[str, object] = {}
        if "LOGCAST_RETRY_TIMEOUT" not in os.environ:
            overrides["retry_timeout"] = 0
        if url is not None:
            overrides["amqp_url"] = url
        if exchange is not None:
            overrides["exchange"] = exchange
        try:
            self.settings = PublisherSettings(**overrides)  # type: ignore[arg-type]
        except ValidationError as error:
            raise ValueError(f"LogcastHandler: {describe_validation_error(error)}") from None
        self.app_id = app_id or Path(sys.argv[0] if sys.argv else "").name or "python"
        self.capacity = buffer
        self.close_timeout = close_timeout
        self._start_lock = threading.Lock()
        self._worker: _Worker | None = None
        self._pid = os.getpid()
        self._closed = False
        self._last_drop_report = 0.0
        # When the last flush began, if it gave up just before close (logging.shutdown flushes,
        # then closes: together they keep to close_timeout).
        self._gave_up: tuple[float, float] | None = None
        self._reported_drops = 0
        os.register_at_fork(after_in_child=_forget_parent_worker(weakref.ref(self)))

    # -- the application's side --------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        worker = self._worker
        if worker is not None and threading.current_thread() is worker.thread:
            return  # pika or our own code logging from the publishing thread: never recursive
        try:
            text = self.format(record)
            if worker is None or self._pid != os.getpid():
                worker = self._start()
                if worker is None:
                    return
            message = worker.encoder.encode(text, level_of(record.levelno), record.name)
            if worker.buffer.put(message):
                self._report_drops(worker)
        except Exception:
            self.handleError(record)

    def _start(self) -> _Worker | None:
        with self._start_lock:
            if self._closed:
                return None
            if self._worker is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._worker = _Worker(self)
                _close_when_a_multiprocessing_child_ends(self)
            return self._worker

    def _report_drops(self, worker: _Worker) -> None:
        now = time.monotonic()
        if now - self._last_drop_report < _DROP_REPORT_SECONDS:
            return
        self._last_drop_report = now
        dropped = worker.buffer.dropped
        print(
            f"logcast handler: buffer of {self.capacity} records full, dropped the oldest "
            f"{dropped - self._reported_drops} (total {dropped}); is the broker reachable?",
            file=sys.stderr,
            flush=True,
        )
        self._reported_drops = dropped

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while this process's publishing session is up (for health checks)."""
        worker = self._worker
        if worker is None or self._pid != os.getpid():
            return False
        return worker.publisher.connected

    @property
    def dropped(self) -> int:
        """Records the full buffer pushed out, in this process."""
        worker = self._worker
        return 0 if worker is None or self._pid != os.getpid() else worker.buffer.dropped

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record handed in so far is confirmed (or dropped), up to
        ``timeout`` (default: close_timeout)."""
        worker = self._worker
        if worker is None or self._pid != os.getpid():
            return
        target = worker.handed_in
        started = time.monotonic()
        deadline = started + (self.close_timeout if timeout is None else timeout)
        while not worker.settled(target) and worker.thread.is_alive():
            if time.monotonic() >= deadline:
                self._gave_up = (started, time.monotonic())
                return
            time.sleep(_FLUSH_POLL_SECONDS)

    def close(self) -> None:
        """Stop: publish what is buffered, wait at most close_timeout for confirms, then say on
        stderr what was left unconfirmed. ``logging.shutdown`` calls it at exit."""
        with self._start_lock:
            worker = None if self._pid != os.getpid() else self._worker
            self._closed = True
        try:
            if worker is not None and worker.thread.is_alive():
                handed_in = worker.handed_in
                worker.buffer.finish()
                now = time.monotonic()
                began = now
                if self._gave_up is not None and now - self._gave_up[1] < _JUST_BEFORE_SECONDS:
                    began = self._gave_up[0]
                deadline = began + self.close_timeout
                while not worker.settled(handed_in) and time.monotonic() < deadline:
                    worker.thread.join(_FLUSH_POLL_SECONDS * 5)
                    if not worker.thread.is_alive():
                        break
                worker.stop.request()
                worker.thread.join(max(0.0, deadline - time.monotonic()) + 0.2)
                confirmed = worker.publisher.ledger.counts.confirmed
                left = handed_in - confirmed - worker.buffer.dropped
                if left > 0 or worker.buffer.dropped:
                    print(
                        f"logcast handler: closed with {max(left, 0)} of {handed_in} records "
                        f"unconfirmed and {worker.buffer.dropped} dropped by the full buffer",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            super().close()


def _close_when_a_multiprocessing_child_ends(handler: LogcastHandler) -> None:
    """A multiprocessing child ends with ``os._exit``: no atexit, so no ``logging.shutdown``, and
    the buffered records would vanish uncounted. Its own exit hook runs registered finalizers."""
    if "multiprocessing" not in sys.modules:
        return
    import multiprocessing.util

    if multiprocessing.parent_process() is not None:
        multiprocessing.util.Finalize(None, handler.close, exitpriority=10)


def _forget_parent_worker(ref: weakref.ReferenceType[LogcastHandler]) -> Callable[[], None]:
    """After fork, in the child: the parent's thread does not exist here and its socket is not
    ours. Fresh locks; the next record starts this process's own worker."""

    def reset() -> None:
        handler = ref()
        if handler is not None:
            handler._start_lock = threading.Lock()
            handler._worker = None
            handler._reported_drops = 0

    return reset
