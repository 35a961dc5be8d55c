"""logcast.handler.LogcastHandler in real application processes against the real broker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.integration.broker import Broker
from tests.integration.helpers import disk_records
from tests.integration.tcp_proxy import CuttableProxy
from tests.integration.test_metrics import free_port
from tests.services import ServiceProcess, wait_for

PRELUDE = """
import json, logging, logging.config, os, sys, time
from logcast.handler import LogcastHandler
log = logging.getLogger("app.orders")
log.setLevel(logging.DEBUG)
"""


def command(code: str) -> list[str]:
    return [sys.executable, "-c", PRELUDE + textwrap.dedent(code)]


def run_app(
    code: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A Python application process running ``code`` after PRELUDE, to its end."""
    return subprocess.run(
        command(code), env=os.environ | env, capture_output=True, text=True, timeout=timeout,
        input="", check=False,
    )  # fmt: skip


def start_app(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """The same, running; its stdin paces its steps."""
    return subprocess.Popen(
        command(code), env=os.environ | env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def handler_records(log_dir: Path, part: str = "") -> list[dict[str, Any]]:
    return [
        r for r in disk_records(log_dir) if r.get("app") == "handler-test" and part in r["text"]
    ]


def wait_records(log_dir: Path, count: int, part: str = "") -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        found = handler_records(log_dir, part)
        return found if len(found) >= count else None

    return wait_for(enough, 60, f"{count} {part or 'handler'} records on disk", 0.2)


def proxy_port(broker: Broker) -> tuple[int, str]:
    """A free port, and the broker's URL through it: the test's CuttableProxy listens there."""
    port = free_port()
    parts = urlsplit(broker.url)
    return port, broker.url_for(parts.username or "", parts.password or "", port=port)


def test_100k_records_arrive_once_each(
    start_service: Callable[..., ServiceProcess], service_env: dict[str, str], tmp_path: Path
) -> None:
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path))
    disk.wait_ready()
    done = run_app(
        """
        handler = LogcastHandler(app_id="handler-test", buffer=100_000, close_timeout=30)
        log.addHandler(handler)
        for i in range(100_000):
            log.info("record %06d", i)
        handler.flush(60)
        print(json.dumps({"dropped": handler.dropped}))
        """,
        service_env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"dropped": 0}
    records = wait_records(tmp_path, 100_000)
    seqs = Counter(r["seq"] for r in records)
    assert sorted(seqs) == list(range(100_000))
    assert max(seqs.values()) == 1  # the receiver dedupes by publisher and number
    assert {r["text"] for r in records[:3]} == {f"record {i:06d}" for i in range(3)}
    assert {(r["level"], r["host"]) for r in records[:1]} == {("info", os.uname().nodename)}
    disk.stop()
    assert disk.events("receiver.done")[-1]["missed"] == 0


def test_broker_down_at_start_then_up_drops_the_oldest_and_receivers_count_them(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    broker: Broker,
    tmp_path: Path,
) -> None:
    """Down at start: the first record and the newest `buffer` - 1 arrive once it is up, the rest
    are dropped (counted, one stderr line). Then cut mid-run. Receivers count exactly the dropped,
    of both phases, as missed."""
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path))
    disk.wait_ready()
    port, url = proxy_port(broker)
    # A short heartbeat: the proxy's cut is only seen once the link has been silent that long.
    env = service_env | {
        "LOGCAST_AMQP_URL": url,
        "LOGCAST_RETRY_TIMEOUT": "0",
        "LOGCAST_HEARTBEAT": "2",
    }
    process = start_app(
        """
        handler = LogcastHandler(app_id="handler-test", buffer=1000, close_timeout=20)
        log.addHandler(handler)
        for i in range(5000):
            log.warning("early %04d", i)
        print("phase1", handler.dropped, flush=True)
        sys.stdin.readline()                    # the broker is reachable now
        handler.flush(30)
        print("flushed", flush=True)
        sys.stdin.readline()                    # and went away again
        for _ in range(200):                    # until the handler has noticed
            if not handler.connected:
                break
            time.sleep(0.05)
        for i in range(3000):
            log.warning("cut %04d", i)
        print("phase2", handler.dropped, flush=True)
        sys.stdin.readline()                    # and is back
        handler.flush(30)
        print("done", handler.dropped, flush=True)
        """,
        env,
    )
    assert process.stdin is not None and process.stdout is not None

    def step(expected: list[str]) -> None:
        assert process.stdout is not None
        assert process.stdout.readline().split() == expected

    def go_on() -> None:
        assert process.stdin is not None
        process.stdin.write("\n")
        process.stdin.flush()

    proxy: CuttableProxy | None = None
    try:
        step(["phase1", "4000"])
        proxy = CuttableProxy(broker.host, broker.port, port=port)
        go_on()
        step(["flushed"])
        early = wait_records(tmp_path, 1000)
        assert [r["text"] for r in early] == [f"early {i:04d}" for i in (0, *range(4001, 5000))]
        proxy.go_down()
        go_on()
        step(["phase2", "6000"])
        proxy = CuttableProxy(broker.host, broker.port, port=port)
        go_on()
        step(["done", "6000"])
        process.stdin.close()
        assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
        if proxy is not None:
            proxy.close()
    cut = wait_records(tmp_path, 1000, "cut")

    assert [r["text"] for r in cut] == [f"cut {i:04d}" for i in range(2000, 3000)]
    stderr = process.stderr.read() if process.stderr else ""
    assert "buffer of 1000 records full" in stderr, stderr
    time.sleep(1)
    disk.stop()
    # 4000 dropped while the broker was down at start, 2000 while it was cut off.
    assert disk.events("receiver.done")[-1]["missed"] == 6000


def test_a_hung_broker_is_dropped_after_the_heartbeat_not_pika_s_later_timeout(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    broker: Broker,
    tmp_path: Path,
) -> None:
    """A broker that hangs (no FIN, nothing more through) is dropped like the services drop it,
    at once after --heartbeat seconds of silence; the handler reconnects and loses nothing."""
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path))
    disk.wait_ready()
    port, url = proxy_port(broker)
    env = service_env | {"LOGCAST_AMQP_URL": url, "LOGCAST_HEARTBEAT": "2"}
    process = start_app(
        """
        handler = LogcastHandler(app_id="handler-test")
        log.addHandler(handler)
        log.warning("before the hang")
        handler.flush(30)
        print("connected", handler.connected, flush=True)
        sys.stdin.readline()                    # the broker hangs now
        for _ in range(600):
            if not handler.connected:
                break
            time.sleep(0.05)
        print("connected", handler.connected, flush=True)
        log.warning("during the hang")
        sys.stdin.readline()                    # a reachable broker again
        handler.flush(30)
        print("dropped", handler.dropped, flush=True)
        """,
        env,
    )
    assert process.stdin is not None and process.stdout is not None
    proxy = CuttableProxy(broker.host, broker.port, port=port)
    try:
        assert process.stdout.readline().split() == ["connected", "True"]
        proxy.freeze()
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.stdout.readline().split() == ["connected", "False"]
        proxy.close()
        proxy = CuttableProxy(broker.host, broker.port, port=port)
        process.stdin.write("\n")
        process.stdin.close()
        assert process.stdout.readline().split() == ["dropped", "0"]
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        proxy.close()
    stderr = process.stderr.read() if process.stderr else ""
    # Our silence watch ended the link (pika's own check would name missed heartbeats).
    assert "amqp.silent" in stderr and "nothing received from" in stderr, stderr
    texts = [r["text"] for r in wait_records(tmp_path, 2)]
    assert sorted(set(texts)) == ["before the hang", "during the hang"], texts


def test_exit_with_pending_records_and_no_broker_takes_close_timeout_plus_at_most_1s(
    service_env: dict[str, str],
) -> None:
    """Nothing listens (refused), or a listener never answers (a hung broker): either way the
    interpreter exits within close_timeout + 1 s, and says what it left unconfirmed."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts in the kernel, never answers
    try:
        for port in (free_port(), silent.getsockname()[1]):
            env = service_env | {
                "LOGCAST_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{port}/%2F",
                "LOGCAST_RETRY_TIMEOUT": "0",
            }
            done = run_app(
                """
                log.addHandler(LogcastHandler(app_id="handler-test", close_timeout=1.0))
                for i in range(1000):
                    log.error("pending %d", i)
                print(time.monotonic(), flush=True)
                """,
                env,
                timeout=30,
            )
            ended = time.monotonic()
            assert done.returncode == 0, done.stderr
            took = ended - float(done.stdout.split()[-1])
            assert took < 1.0 + 1.0, took
            assert "closed with 1000 of 1000 records unconfirmed" in done.stderr, done.stderr
            print(f"handler exit with port {port} unreachable: {took:.2f}s")
    finally:
        silent.close()


def test_a_forked_child_logs_through_its_own_connection(
    start_service: Callable[..., ServiceProcess], service_env: dict[str, str], tmp_path: Path
) -> None:
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path))
    disk.wait_ready()
    done = run_app(
        """
        handler = LogcastHandler(app_id="handler-test")
        log.addHandler(handler)
        log.info("parent before fork")
        handler.flush(10)
        pid = os.fork()
        if pid == 0:
            for i in range(100):
                log.info("child %d", i)
            handler.flush(10)
            handler.close()
            os._exit(0 if handler.dropped == 0 else 1)
        _, status = os.waitpid(pid, 0)
        for i in range(100):
            log.info("parent after fork %d", i)
        handler.flush(10)
        print(json.dumps({"child": os.waitstatus_to_exitcode(status), "connected": handler.connected}))
        """,
        service_env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"child": 0, "connected": True}
    # The parent's link carried on untouched: no lost connection, nothing resent.
    assert "connection_lost" not in done.stderr and "republishing" not in done.stderr, done.stderr
    records = wait_records(tmp_path, 201)
    by_publisher: dict[str, list[str]] = {}
    for record in records:
        by_publisher.setdefault(record["publisher"], []).append(record["text"])
    parent = next(texts for texts in by_publisher.values() if "parent before fork" in texts)
    child = next(texts for texts in by_publisher.values() if "child 0" in texts)
    assert parent == ["parent before fork"] + [f"parent after fork {i}" for i in range(100)]
    assert child == [f"child {i}" for i in range(100)]


MULTIPROCESSING_APP = """
import logging, multiprocessing, sys
from logcast.handler import LogcastHandler

log = logging.getLogger("app.worker")
log.setLevel(logging.INFO)
log.addHandler(LogcastHandler(app_id="handler-test"))


def work(method):
    for i in range(300):
        log.info("%s worker %d", method, i)  # and return: no flush, no close


if __name__ == "__main__":
    for method in sys.argv[1:]:
        worker = multiprocessing.get_context(method).Process(target=work, args=(method,))
        worker.start()
        worker.join()
        assert worker.exitcode == 0, worker.exitcode
"""


def test_multiprocessing_workers_deliver_their_last_records_at_exit(
    start_service: Callable[..., ServiceProcess], service_env: dict[str, str], tmp_path: Path
) -> None:
    """A multiprocessing child ends with os._exit, past atexit and logging.shutdown: the handler
    still settles its buffer then (before the fix, every record of a fork child was lost)."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    disk = start_service("disk-receiver", "--log-dir", str(log_dir))
    disk.wait_ready()
    app = tmp_path / "app.py"
    app.write_text(MULTIPROCESSING_APP)
    done = subprocess.run(
        [sys.executable, str(app), "fork", "forkserver", "spawn"],
        env=os.environ | service_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for method in ("fork", "forkserver", "spawn"):
        texts = [r["text"] for r in wait_records(log_dir, 300, f"{method} worker")]
        assert texts == [f"{method} worker {i}" for i in range(300)], method


def test_dict_config_formats_tracebacks_and_sends_the_logger_and_level(
    broker: Broker, service_env: dict[str, str], exchange: str
) -> None:
    connection = broker.blocking()
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, "fanout", auto_delete=False, durable=False)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, exchange)
        done = run_app(
            f"""
            logging.config.dictConfig({{
                "version": 1,
                "formatters": {{"plain": {{"format": "%(levelname)s %(name)s: %(message)s"}}}},
                "handlers": {{"logcast": {{
                    "class": "logcast.handler.LogcastHandler",
                    "url": {service_env["LOGCAST_AMQP_URL"]!r},
                    "exchange": {exchange!r},
                    "app_id": "orders-api",
                    "level": "INFO",
                    "formatter": "plain",
                }}}},
                "loggers": {{"app": {{"handlers": ["logcast"], "level": "DEBUG"}}}},
            }})
            log.debug("filtered out by the handler's level")
            try:
                1 / 0
            except ZeroDivisionError:
                log.exception("order %s failed", 42)
            """,
            {k: v for k, v in service_env.items() if k != "LOGCAST_EXCHANGE"},
        )
        assert done.returncode == 0, done.stderr
        got = []
        for method, properties, body in channel.consume(queue, inactivity_timeout=5):
            if method is None:
                break
            got.append((properties, body.decode()))
            channel.basic_ack(method.delivery_tag)
        channel.cancel()
    finally:
        connection.close()
    assert len(got) == 1, got
    properties, text = got[0]
    assert text.startswith("ERROR app.orders: order 42 failed\nTraceback (most recent call last):")
    assert text.rstrip().endswith("ZeroDivisionError: division by zero")
    assert properties.app_id == "orders-api"
    headers = properties.headers
    assert (headers["level"], headers["logger"], headers["seq"]) == ("error", "app.orders", 0)
    assert headers["host"] == socket.gethostname()


def test_refused_credentials_stop_the_handler_with_one_line_and_the_app_runs_on(
    broker: Broker, service_env: dict[str, str]
) -> None:
    parts = urlsplit(broker.url)
    env = service_env | {"LOGCAST_AMQP_URL": broker.url_for("nobody", "wrong", port=parts.port)}
    done = run_app(
        """
        handler = LogcastHandler(app_id="handler-test", close_timeout=0.5)
        log.addHandler(handler)
        log.error("first")
        time.sleep(3)
        log.error("after the refusal")
        print("still running", handler.dropped)
        """,
        env,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["still", "running", "0"]
    stopped = [x for x in done.stderr.splitlines() if "publishing stopped" in x]
    assert stopped == [
        "logcast handler: publishing stopped: broker refused the credentials for "
        f"amqp://nobody:***@{parts.hostname}:{parts.port}/%2F"
    ], done.stderr
