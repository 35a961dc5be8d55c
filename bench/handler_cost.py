"""H1: the cost of ``logger.info()`` with LogcastHandler, against the stdlib's QueueHandler and a
QueueListener writing to /dev/null, in the same process and run; the same with no broker (the
handler retrying its connection), and with the broker's memory alarm blocking every publisher;
and the sustained rate of records that reach a consumer."""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika

from logcast.handler import LogcastHandler


def _per_call_us(handler: logging.Handler, n: int) -> float:
    log = logging.getLogger(f"bench.h1.{uuid.uuid4().hex[:6]}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    info = log.info
    started = time.perf_counter()
    for i in range(n):
        info("GET /api/orders/%d 200 %dms", i, i % 900)
    took = time.perf_counter() - started
    log.removeHandler(handler)
    return took / n * 1e6


def _queue_baseline(n: int) -> float:
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    with open(os.devnull, "w") as sink:
        listener = logging.handlers.QueueListener(records, logging.StreamHandler(sink))
        listener.start()
        try:
            return _per_call_us(logging.handlers.QueueHandler(records), n)
        finally:
            listener.stop()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"{parts.hostname}:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def _ours(url: str, exchange: str, n: int, buffer: int = 10_000) -> tuple[float, LogcastHandler]:
    handler = LogcastHandler(url, exchange=exchange, app_id="bench", buffer=buffer)
    return _per_call_us(handler, n), handler


@contextmanager
def _bound_queue(url: str, exchange: str, max_length: int | None = None) -> Iterator[Any]:
    """A receiver's queue on ``exchange`` (so the handler's lines are routed, not returned)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, "fanout")
        arguments = {} if max_length is None else {"x-max-length": max_length}
        name = channel.queue_declare("", exclusive=True, arguments=arguments).method.queue
        channel.queue_bind(name, exchange)
        yield channel, name
        channel.exchange_delete(exchange)
    finally:
        connection.close()


def ctl(*args: str) -> list[str]:
    """rabbitmqctl on the benchmark's broker (the host's); also P7's."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.splitlines()


@contextmanager
def _memory_alarm() -> Iterator[None]:
    """The broker's memory alarm raised (it blocks every publishing connection), always cleared
    again by restoring the watermark it had (a fraction like 0.4, or {absolute,Bytes})."""
    before = ctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().")[0].strip()
    restore = ["absolute", before.strip("{}").split(",")[1]] if "absolute" in before else [before]
    ctl("set_vm_memory_high_watermark", "0")
    try:
        yield
    finally:
        ctl("set_vm_memory_high_watermark", *restore)


def _under_alarm(url: str, exchange: str, n: int) -> tuple[float, int]:
    """Per-call cost while the broker blocks the handler's connection, and the records dropped."""
    handler = LogcastHandler(url, exchange=exchange, app_id="bench")
    _per_call_us(handler, 1)  # starts its thread; connected before the alarm
    deadline = time.monotonic() + 30
    while not handler.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    with _memory_alarm():
        time.sleep(0.5)  # the broker tells its publishers (connection.blocked)
        cost = _per_call_us(handler, n)
        dropped = handler.dropped
    handler.close()
    return cost, dropped


def _sustained(url: str, exchange: str, n: int) -> float:
    """Records per second from the first ``info()`` until a consumer has all n."""
    with _bound_queue(url, exchange) as (channel, queue_name):
        return _drain_rate(url, exchange, n, channel, queue_name)


def _drain_rate(url: str, exchange: str, n: int, channel: Any, queue_name: str) -> float:
    channel.basic_qos(prefetch_count=2000)
    handler = LogcastHandler(url, exchange=exchange, app_id="bench", buffer=n)
    log = logging.getLogger(f"bench.h1s.{uuid.uuid4().hex[:6]}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    started = time.perf_counter()
    for i in range(n):
        log.info("GET /api/orders/%d 200 %dms", i, i % 900)
    got = 0
    for method, _properties, _body in channel.consume(queue_name, inactivity_timeout=30):
        if method is None:
            break
        got += 1
        if got % 1000 == 0 or got == n:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if got == n:
            break
    took = time.perf_counter() - started
    channel.cancel()
    handler.close()
    if got != n:
        raise RuntimeError(f"H1 sustained: {got} of {n} records arrived")
    return n / took


def measure(url: str, n: int) -> dict[str, float]:
    exchange = f"bench-h1-{uuid.uuid4().hex[:6]}"
    baseline = _queue_baseline(n)
    with _bound_queue(url, exchange, max_length=1000):
        ours, handler = _ours(url, exchange, n)
        handler.close()
    down, stopped = _ours(_with_port(url, _closed_port()), exchange, n)
    dropped = stopped.dropped
    stopped.close_timeout = 0.0
    stopped.close()
    with _bound_queue(url, exchange, max_length=1000):
        alarm, alarm_dropped = _under_alarm(url, exchange, n)
    return {
        "H1.queue_handler_us": baseline,
        "H1.ours_us": ours,
        "H1.ratio": ours / baseline,
        "H1.broker_down_us": down,
        "H1.broker_down_ratio": down / baseline,
        "H1.broker_down_dropped": dropped,
        "H1.memory_alarm_us": alarm,
        "H1.memory_alarm_ratio": alarm / baseline,
        "H1.memory_alarm_dropped": alarm_dropped,
        "H1.sustained_per_s": _sustained(url, exchange + "-s", n),
    }
