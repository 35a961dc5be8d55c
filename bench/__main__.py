"""python -m bench [--messages N] [--amqp-url URL]: P1-P3 ratios, P6 latency, peak RSS, start-up.

P1H and P3R add the history stream: P1 with it bound, and --resume draining it against P3.
H1 is the logging handler: logger.info() with LogcastHandler against QueueHandler + QueueListener.
P1C (only with --only P1C; needs Docker and RABBITMQ_IMAGE) runs P1 across the nodes of a 3-node
cluster against a standalone node. P2T (only with --only P2T; the same needs) runs P2 over amqps
with mutual TLS against P2 over amqp, on the TLS overlay's broker with both listeners.

Every figure compares logcast with a raw baseline run in the same invocation on the same broker.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pika

from bench import handler_cost
from bench.cluster_brokers import Brokers, cluster_brokers
from bench.handler_cost import ctl
from bench.tls_broker import TlsBroker, tls_broker

BIN = Path(sys.executable).parent
DEFAULT_URL = os.environ.get("LOGCAST_BENCH_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
TIMEOUT = 300.0


@dataclass
class Proc:
    """A child process; its peak RSS is VmHWM from /proc, sampled until it exits.

    (wait4's ru_maxrss would include the memory of this parent at fork time.)"""

    name: str
    popen: subprocess.Popen[bytes]
    started: float
    stderr_path: Path
    max_rss_kb: int = 0
    returncode: int | None = None
    cpu_s: float = 0.0  # user + system time, from wait4 once it has exited
    ready_at: float | None = None
    notes: dict[str, float] = field(default_factory=dict)

    def wait(self, timeout: float = TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            self.sample_rss()
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid:
                self.cpu_s = usage.ru_utime + usage.ru_stime
                self.returncode = os.waitstatus_to_exitcode(status)
                self.popen.returncode = self.returncode
                break
            if time.monotonic() > deadline:
                self.popen.kill()
                raise TimeoutError(f"{self.name} did not finish")
            time.sleep(0.005)
        return self.returncode

    @property
    def ready_s(self) -> float:
        assert self.ready_at is not None, "wait_ready first"
        return self.ready_at - self.started

    def sample_rss(self) -> None:
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.max_rss_kb = max(self.max_rss_kb, int(line.split()[1]))

    def wait_ready(self, marker: bytes, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.stderr_path.read_bytes():
                self.ready_at = time.monotonic()
                return self.ready_at - self.started
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.stderr_path.read_text()[-2000:]}")
            time.sleep(0.002)
        raise TimeoutError(f"{self.name} not ready")


def spawn(
    name: str,
    argv: list[str],
    work: Path,
    env: dict[str, str],
    *,
    stdin_path: Path | None = None,
    stdout_path: Path | None = None,
    stdin_pipe: bool = False,
) -> Proc:
    stderr_path = work / f"{name}-{uuid.uuid4().hex[:6]}.err"
    stdout = stdout_path.open("wb") if stdout_path else subprocess.DEVNULL
    stdin: Any = stdin_path.open("rb") if stdin_path else subprocess.DEVNULL
    if stdin_pipe:
        stdin = subprocess.PIPE
    started = time.monotonic()
    popen = subprocess.Popen(
        argv, stdin=stdin, stdout=stdout, stderr=stderr_path.open("wb"), env=os.environ | env
    )
    return Proc(name, popen, started, stderr_path)


class LineCounter:
    """Counts newlines appended to a file, reading only what is new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def poll(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            self.offset += len(chunk)
            self.lines += chunk.count(b"\n")
        return self.lines


def wait_lines(counters: list[LineCounter], n: int, timeout: float = TIMEOUT) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.poll() >= n for c in counters):
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"only {[c.lines for c in counters]} of {n} lines arrived")


def make_input(work: Path, n: int) -> Path:
    rng = random.Random(42)
    levels = ["info", "warning", "error", "debug"]
    path = work / "input.txt"
    with path.open("w") as f:
        for i in range(n):
            text = f"{rng.choice(levels)}: request {i:07d} served by web-{rng.randint(1, 9)} "
            f.write(text + "x" * (100 - len(text)) + "\n")
    return path


class Bench:
    def __init__(
        self,
        url: str,
        n: int,
        work: Path,
        brokers: Brokers | None = None,
        tls: TlsBroker | None = None,
    ) -> None:
        self.url = url
        self.brokers = brokers
        self.tls = tls
        # P2T's broker takes only its users, not the host broker's guest.
        self.admin_url = tls.admin_url if tls else url
        self.n = n
        self.work = work
        self.input = make_input(work, n)
        self.results: dict[str, float] = {}

    def env(self, exchange: str, url: str | None = None) -> dict[str, str]:
        return {
            "LOGCAST_AMQP_URL": url or self.url,
            "LOGCAST_EXCHANGE": exchange,
            "LOGCAST_SECRETS_DIR": "/nonexistent",
            "LOGCAST_FSYNC": os.environ.get("BENCH_FSYNC", "interval"),
        }

    def raw_consumer(
        self, exchange: str, out: Path, count: int | None = None, *, stamp: bool = False
    ) -> Proc:
        proc = spawn(
            "raw-consumer",
            [
                sys.executable,
                "-m",
                "bench.raw_clients",
                "consume",
                self.url,
                exchange,
                str(count or self.n),
                str(out),
                *(["--stamp"] if stamp else []),
            ],
            self.work,
            {},
            stdout_path=self.work / f"{out.name}.stdout",
        )
        deadline = time.monotonic() + 30
        while b"ready" not in (self.work / f"{out.name}.stdout").read_bytes():
            if time.monotonic() > deadline:
                raise TimeoutError("raw consumer not ready")
            time.sleep(0.01)
        return proc

    def raw_publisher(self, exchange: str) -> Proc:
        return spawn(
            "raw-publisher",
            [
                sys.executable,
                "-m",
                "bench.raw_clients",
                "publish",
                self.url,
                exchange,
                str(self.input),
            ],
            self.work,
            {},
        )

    def receivers(
        self, exchange: str, screen_url: str | None = None, disk_url: str | None = None
    ) -> tuple[Proc, Proc, Path, Path]:
        log_dir = self.work / f"disk-{exchange}"
        log_dir.mkdir()
        screen_out = self.work / f"screen-{exchange}.out"
        screen = spawn(
            "screen-receiver",
            [str(BIN / "screen-receiver"), "--color", "never"],
            self.work,
            self.env(exchange, screen_url),
            stdout_path=screen_out,
        )
        disk = spawn(
            "disk-receiver",
            [str(BIN / "disk-receiver"), "--log-dir", str(log_dir), "--instance", "bench"],
            self.work,
            self.env(exchange, disk_url),
        )
        screen.wait_ready(b'"event": "ready"')
        disk.wait_ready(b'"event": "ready"')
        return screen, disk, screen_out, log_dir / "bench.jsonl"

    def stop(self, *procs: Proc) -> None:
        for proc in procs:
            proc.sample_rss()
            proc.popen.send_signal(signal.SIGTERM)
        for proc in procs:
            if proc.wait(30) != 0:
                raise RuntimeError(f"{proc.name} exited {proc.returncode}")

    def emitter(
        self, exchange: str, url: str | None = None, extra: dict[str, str] | None = None
    ) -> Proc:
        return spawn(
            "emitter",
            [str(BIN / "emitter"), "--stdin"],
            self.work,
            self.env(exchange, url) | (extra or {}),
            stdin_path=self.input,
        )

    def raw_p1(self, name: str) -> float:
        """P1's baseline: seconds from the raw publisher's start until both consumers have all."""
        exchange = f"bench-{name}-raw-{uuid.uuid4().hex[:6]}"
        outs = [self.work / f"raw-{name}-{i}.txt" for i in range(2)]
        consumers = [self.raw_consumer(exchange, out) for out in outs]
        publisher = self.raw_publisher(exchange)
        end = wait_lines([LineCounter(o) for o in outs], self.n)
        for proc in (publisher, *consumers):
            proc.wait()
        return end - publisher.started

    def ours_p1(
        self, exchange: str, urls: tuple[str, str, str] | None = None
    ) -> tuple[float, Proc, Proc, int]:
        """P1's logcast pipeline: seconds from the emitter's start until both receivers have it
        all, the receivers (stopped) and how many lines the one with fewer lacks. ``urls``: the
        emitter's, the screen receiver's and the disk receiver's broker."""
        emitter_url, screen_url, disk_url = urls or (None, None, None)
        screen, disk, screen_out, disk_file = self.receivers(exchange, screen_url, disk_url)
        emitter = self.emitter(exchange, emitter_url)
        end = wait_lines([LineCounter(screen_out), LineCounter(disk_file)], self.n)
        emitter.wait()
        self.stop(screen, disk)
        if emitter.returncode != 0:
            raise RuntimeError(f"emitter exited {emitter.returncode}")
        lost = self.n - min(LineCounter(screen_out).poll(), LineCounter(disk_file).poll())
        return end - emitter.started, screen, disk, lost

    def p1(self) -> None:
        raw_seconds = self.raw_p1("p1")
        ours_seconds, screen, disk, lost = self.ours_p1(f"bench-p1-ours-{uuid.uuid4().hex[:6]}")
        self.results |= {
            "ready_s.screen-receiver": screen.ready_s,
            "ready_s.disk-receiver": disk.ready_s,
            "P1.raw_msgs_per_s": self.n / raw_seconds,
            "P1.ours_msgs_per_s": self.n / ours_seconds,
            "P1.ratio": raw_seconds / ours_seconds,
            "P1.lost": lost,
            "rss_mb.screen-receiver": screen.max_rss_kb / 1024,
            "rss_mb.disk-receiver": disk.max_rss_kb / 1024,
        }

    def p1c(self) -> None:
        """P1 with the emitter and the two receivers on three different nodes of a cluster,
        against the same pipeline on a standalone node of the same image."""
        assert self.brokers is not None
        single = (self.brokers.single,) * 3
        single_seconds, *_ = self.ours_p1(f"bench-p1c-single-{uuid.uuid4().hex[:6]}", single)
        exchange = f"bench-p1c-cluster-{uuid.uuid4().hex[:6]}"
        cluster_seconds, _, _, lost = self.ours_p1(exchange, self.brokers.nodes)
        self.results |= {
            "P1C.single_msgs_per_s": self.n / single_seconds,
            "P1C.cluster_msgs_per_s": self.n / cluster_seconds,
            "P1C.ratio": single_seconds / cluster_seconds,
            "P1C.lost": lost,
        }

    def h1(self) -> None:
        """LogcastHandler's per-call cost against QueueHandler + QueueListener, and its rate."""
        self.results |= handler_cost.measure(self.url, self.n)

    @contextmanager
    def channel(self) -> Iterator[Any]:
        """A short-lived channel: an idle BlockingConnection would miss its heartbeats."""
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            yield connection.channel()
        finally:
            connection.close()

    @contextmanager
    def history_stream(self, exchange: str, *, bind: bool) -> Iterator[str]:
        """``<exchange>.history`` as compose's definitions declare it, deleted afterwards with its
        exchange: streams are durable and would pile up on the broker's disk."""
        queue = f"{exchange}.history"
        with self.channel() as channel:
            channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "stream"})
            if bind:
                # As logcast declares it, or the emitter or receivers would fail to declare it.
                channel.exchange_declare(
                    exchange=exchange, exchange_type="fanout", durable=False, auto_delete=False
                )
                channel.queue_bind(queue=queue, exchange=exchange)
        try:
            yield queue
        finally:
            with self.channel() as channel:
                channel.queue_delete(queue)
                channel.exchange_delete(exchange)

    def stream_messages(self, queue: str, timeout: float = TIMEOUT) -> int:
        """Messages in a stream, polled until there are n: declare-ok's count trails the writes."""
        deadline = time.monotonic() + timeout
        with self.channel() as channel:
            while True:
                count: int = channel.queue_declare(queue, passive=True).method.message_count
                if count >= self.n or time.monotonic() > deadline:
                    return count
                channel.connection.sleep(0.1)  # serves heartbeats, unlike time.sleep

    def p1h(self) -> None:
        """P1 with the history stream bound; the stream's cost against logcast without it."""
        raw_seconds = self.raw_p1("p1h")
        plain_seconds, *_ = self.ours_p1(f"bench-p1h-plain-{uuid.uuid4().hex[:6]}")
        exchange = f"bench-p1h-ours-{uuid.uuid4().hex[:6]}"
        # Not bound here: the emitter binds it at session start, and that is under test too.
        with self.history_stream(exchange, bind=False) as queue:
            ours_seconds, *_ = self.ours_p1(exchange)
            # The emitter has exited, so every line is confirmed, hence in the stream: only the
            # count may trail, for a few seconds.
            stream_msgs = self.stream_messages(queue, timeout=min(30.0, TIMEOUT))
        self.results |= {
            "P1H.raw_msgs_per_s": self.n / raw_seconds,
            "P1H.ours_msgs_per_s": self.n / ours_seconds,
            "P1H.ratio": raw_seconds / ours_seconds,
            "P1H.stream_msgs": stream_msgs,
            "P1H.stream_cost": plain_seconds / ours_seconds,
        }

    def ours_p2(
        self, exchange: str, url: str | None = None, extra: dict[str, str] | None = None
    ) -> tuple[float, Proc]:
        """Seconds until the emitter has every line confirmed, one queue bound to the exchange."""
        holder = pika.BlockingConnection(pika.URLParameters(self.admin_url))
        channel = holder.channel()
        channel.exchange_declare(exchange=exchange, exchange_type="fanout")
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.queue_bind(queue=queue, exchange=exchange)
        emitter = self.emitter(exchange, url, extra)
        emitter.wait_ready(b'"event": "ready"')
        emitter.wait()
        seconds = time.monotonic() - emitter.started
        holder.close()
        done = next(
            json.loads(line)
            for line in emitter.stderr_path.read_text().splitlines()
            if '"emitter.done"' in line
        )
        if emitter.returncode != 0 or done["confirmed"] != self.n:
            raise RuntimeError(f"emitter: {done}")
        return seconds, emitter

    def p2(self) -> None:
        exchange = f"bench-p2-raw-{uuid.uuid4().hex[:6]}"
        holder = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = holder.channel()
        channel.exchange_declare(exchange=exchange, exchange_type="fanout")
        channel.queue_bind(channel.queue_declare("", exclusive=True).method.queue, exchange)
        raw = self.raw_publisher(exchange)
        raw.wait()
        raw_seconds = time.monotonic() - raw.started
        holder.close()

        ours_seconds, emitter = self.ours_p2(f"bench-p2-ours-{uuid.uuid4().hex[:6]}")
        assert emitter.ready_at is not None
        self.results |= {
            "P2.raw_unconfirmed_msgs_per_s": self.n / raw_seconds,
            "P2.ours_confirmed_msgs_per_s": self.n / ours_seconds,
            "P2.ratio": raw_seconds / ours_seconds,
            "ready_s.emitter": emitter.ready_s,
            "rss_mb.emitter": emitter.max_rss_kb / 1024,
        }

    def p2t(self) -> None:
        """P2 over amqps (mutual TLS, EXTERNAL auth) against P2 over amqp, on one broker and
        as the same user; the exchange is "logs" because the user's permissions name it."""
        assert self.tls is not None
        seconds = {False: 0.0, True: 0.0}
        cpu = {False: 0.0, True: 0.0}
        for order in (1, -1):  # plaintext first, then TLS first: the order's effect cancels
            for tls in (False, True)[::order]:
                url, extra = (self.tls.tls_url, self.tls.tls_env) if tls else (
                    self.tls.plaintext_url, {})  # fmt: skip
                took, emitter = self.ours_p2("logs", url, extra)
                seconds[tls] += took
                cpu[tls] += emitter.cpu_s
        plain_seconds, tls_seconds = seconds[False], seconds[True]
        self.results |= {
            "P2T.plaintext_msgs_per_s": 2 * self.n / plain_seconds,
            "P2T.tls_msgs_per_s": 2 * self.n / tls_seconds,
            "P2T.ratio": plain_seconds / tls_seconds,
            # The emitter's own CPU per message: TLS costs the client this much more.
            "P2T.plaintext_emitter_cpu_us": cpu[False] / (2 * self.n) * 1e6,
            "P2T.tls_emitter_cpu_us": cpu[True] / (2 * self.n) * 1e6,
        }

    def drain(self, consumer: Proc, out: Path, exchange: str) -> float:
        """Pause the consumer, fill its queue, resume it, time until it has written everything."""
        consumer.popen.send_signal(signal.SIGSTOP)
        self.raw_publisher(exchange).wait()
        counter = LineCounter(out)
        started = time.monotonic()
        consumer.popen.send_signal(signal.SIGCONT)
        return wait_lines([counter], self.n) - started

    def disk_receiver(self, exchange: str, name: str) -> tuple[Proc, Path]:
        """A bound disk-receiver writing to its own directory, and the file it writes."""
        log_dir = self.work / f"disk-{name}"
        log_dir.mkdir()
        disk = spawn(
            "disk-receiver",
            [str(BIN / "disk-receiver"), "--log-dir", str(log_dir), "--instance", name],
            self.work,
            self.env(exchange),
        )
        disk.wait_ready(b'"event": "ready"')
        return disk, log_dir / f"{name}.jsonl"

    def raw_p3(self, name: str) -> float:
        """P3's baseline: seconds for a resumed raw consumer to write its backlog."""
        exchange = f"bench-{name}-raw-{uuid.uuid4().hex[:6]}"
        out = self.work / f"raw-{name}.txt"
        consumer = self.raw_consumer(exchange, out)
        seconds = self.drain(consumer, out, exchange)
        consumer.wait()
        return seconds

    def ours_p3(self, name: str) -> float:
        """P3's logcast side: seconds for a resumed disk-receiver to write its backlog."""
        exchange = f"bench-{name}-ours-{uuid.uuid4().hex[:6]}"
        disk, disk_file = self.disk_receiver(exchange, name)
        seconds = self.drain(disk, disk_file, exchange)
        self.stop(disk)
        return seconds

    def p3(self) -> None:
        raw_seconds = self.raw_p3("p3")
        ours_seconds = self.ours_p3("p3")
        self.results |= {
            "P3.raw_msgs_per_s": self.n / raw_seconds,
            "P3.ours_msgs_per_s": self.n / ours_seconds,
            "P3.ratio": raw_seconds / ours_seconds,
        }

    def p3r(self) -> None:
        """``disk-receiver --resume`` archiving a filled history stream, against P3's drains."""
        raw_seconds = self.raw_p3("p3r")
        p3_seconds = self.ours_p3("p3r")
        exchange = f"bench-p3r-resume-{uuid.uuid4().hex[:6]}"
        with self.history_stream(exchange, bind=True) as queue:
            self.raw_publisher(exchange).wait()
            # Unconfirmed publishes: wait until the stream holds them all before the clock starts.
            if (found := self.stream_messages(queue)) != self.n:
                raise RuntimeError(f"the stream holds {found} of {self.n} messages")
            log_dir = self.work / f"disk-{exchange}"
            log_dir.mkdir()
            disk = spawn(
                "disk-receiver",
                [
                    str(BIN / "disk-receiver"),
                    "--resume",
                    "--resume-from",
                    "first",
                    "--log-dir",
                    str(log_dir),
                    "--instance",
                    "p3r",
                ],
                self.work,
                self.env(exchange),
            )
            try:
                # From ready (attached to the stream), as P3 times a consumer already connected;
                # the process start-up is reported apart.
                disk.wait_ready(b'"event": "ready"')
                end = wait_lines([LineCounter(log_dir / "p3r.jsonl")], self.n)
            finally:
                self.stop(disk)  # even on failure: it would declare the deleted stream again
            assert disk.ready_at is not None
            resume_seconds = end - disk.ready_at
        self.results |= {
            "P3R.raw_msgs_per_s": self.n / raw_seconds,
            "P3R.p3_ours_msgs_per_s": self.n / p3_seconds,
            "P3R.resume_msgs_per_s": self.n / resume_seconds,
            "P3R.ratio": raw_seconds / resume_seconds,
            "P3R.vs_p3": p3_seconds / resume_seconds,
            "P3R.ready_s": disk.ready_at - disk.started,
        }

    def p6(self) -> None:
        """Latency of a paced ``--stdin`` stream into a disk-receiver, against the tutorial pair."""
        for rate in P6_RATES:
            count = int(rate * P6_SECONDS)
            exchange = f"bench-p6-raw-{uuid.uuid4().hex[:6]}"
            out = self.work / f"raw-p6-{rate}.txt"
            consumer = self.raw_consumer(exchange, out, count, stamp=True)
            publisher = spawn(
                "raw-publisher",
                [sys.executable, "-m", "bench.raw_clients", "publish", self.url, exchange, "-"],
                self.work,
                {},
                stdin_pipe=True,
            )
            time.sleep(0.5)  # connected and declared before the clock starts
            assert publisher.popen.stdin is not None
            pace(publisher.popen.stdin, rate, count)
            wait_lines([LineCounter(out)], count)
            publisher.wait()
            consumer.wait()
            raw = [
                int(received) - int(written) / 1e6
                for received, written, _ in (
                    line.split(b" ", 2) for line in out.read_bytes().splitlines()
                )
            ]

            exchange = f"bench-p6-ours-{uuid.uuid4().hex[:6]}"
            disk, disk_file = self.disk_receiver(exchange, f"p6-{rate}")
            emitter = spawn(
                "emitter",
                [str(BIN / "emitter"), "--stdin"],
                self.work,
                self.env(exchange),
                stdin_pipe=True,
            )
            emitter.wait_ready(b'"event": "ready"')
            assert emitter.popen.stdin is not None
            pace(emitter.popen.stdin, rate, count)
            wait_lines([LineCounter(disk_file)], count)
            if emitter.wait() != 0:
                raise RuntimeError(f"emitter exited {emitter.returncode}")
            self.stop(disk)
            ours = []
            for line in disk_file.read_text().splitlines():
                record = json.loads(line)
                received = datetime.fromisoformat(record["received"]).timestamp() * 1000
                ours.append(round(received) - int(record["text"].split(" ", 1)[0]) / 1e6)
            for name, values in (("raw", raw), ("ours", ours)):
                centiles = statistics.quantiles(values, n=100, method="inclusive")
                self.results[f"P6.{rate}.{name}_p50_ms"] = centiles[49]
                self.results[f"P6.{rate}.{name}_p99_ms"] = centiles[98]
                self.results[f"P6.{rate}.{name}_max_ms"] = max(values)
            self.results[f"P6.{rate}.p99_ratio"] = self.results[f"P6.{rate}.ours_p99_ms"] / max(
                self.results[f"P6.{rate}.raw_p99_ms"], 1.0
            )

    def p7(self) -> None:
        """A frozen receiver with a bounded queue must not slow the emitter or a healthy one."""
        bound = 1024 * 1024
        timings = {}
        for frozen in (False, True):
            exchange = f"bench-p7-{'frozen' if frozen else 'free'}-{uuid.uuid4().hex[:6]}"
            healthy, healthy_file = self.disk_receiver(exchange, f"p7-healthy-{frozen}")
            stuck_env = self.env(exchange) | {"LOGCAST_QUEUE_MAX_BYTES": str(bound)}
            stuck_out = self.work / f"p7-stuck-{frozen}.out"
            stuck = spawn(
                "screen-receiver",
                [str(BIN / "screen-receiver"), "--color", "never", "--prefetch", "100"],
                self.work,
                stuck_env,
                stdout_path=stuck_out,
            )
            stuck.wait_ready(b'"event": "ready"')
            if frozen:
                stuck.popen.send_signal(signal.SIGSTOP)
            emitter = self.emitter(exchange)
            emitter.wait()
            emitter_seconds = time.monotonic() - emitter.started
            healthy_seconds = wait_lines([LineCounter(healthy_file)], self.n) - emitter.started
            timings[frozen] = (emitter_seconds, healthy_seconds)
            if frozen:
                queue = next(
                    line.split("\t")
                    for line in ctl("list_queues", "name", "message_bytes", "memory")
                    if line.startswith("amq.gen-") and line.split("\t")[1] != "0"
                )
                self.results["P7.frozen_queue_message_bytes"] = float(queue[1])
                self.results["P7.frozen_queue_memory_mb"] = int(queue[2]) / 2**20
                stuck.popen.send_signal(signal.SIGCONT)
                # Its queue kept the newest lines: once the last one is out, every gap is known.
                last = f"request {self.n - 1:07d}".encode()
                deadline = time.monotonic() + 120
                while last not in stuck_out.read_bytes()[-4096:]:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the frozen receiver did not catch up")
                    time.sleep(0.1)
                time.sleep(2.5)  # gaps settle 2 s after they open
            self.stop(healthy, stuck)
            if frozen:
                done = next(
                    json.loads(line)
                    for line in stuck.stderr_path.read_text().splitlines()
                    if '"receiver.done"' in line
                )
                printed = LineCounter(stuck_out).poll()
                self.results["P7.frozen_missed"] = done["missed"]
                self.results["P7.frozen_missed_minus_not_got"] = done["missed"] - (self.n - printed)
        self.results["P7.emitter_slowdown"] = timings[True][0] / timings[False][0]
        self.results["P7.healthy_slowdown"] = timings[True][1] / timings[False][1]

    def p8(self) -> None:
        """Receiving 32 MiB messages: the fast receive path against plain pika decoding."""
        size, count = 32 * 2**20, 3
        body_file = self.work / "large.txt"
        with body_file.open("wb") as f:
            for i in range(count):
                f.write(b"%d " % i + b"y" * (size - 10) + b"\n")
        seconds = {}
        for fast in ("true", "false"):
            exchange = f"bench-p8-{fast}-{uuid.uuid4().hex[:6]}"
            log_dir = self.work / f"disk-p8-{fast}"
            log_dir.mkdir()
            disk = spawn(
                "disk-receiver",
                [str(BIN / "disk-receiver"), "--log-dir", str(log_dir), "--instance", "p8"],
                self.work,
                self.env(exchange)
                | {
                    "LOGCAST_FAST_DECODE": fast,
                    "LOGCAST_PREFETCH": "2",
                    "LOGCAST_QUEUE_MAX_BYTES": "0",
                },
            )
            disk.wait_ready(b'"event": "ready"')
            disk.popen.send_signal(signal.SIGSTOP)  # the messages wait in the queue
            emitter = spawn(
                "emitter",
                [str(BIN / "emitter"), "--stdin", "--max-message-bytes", str(64 * 2**20)],
                self.work,
                self.env(exchange),
                stdin_path=body_file,
            )
            if emitter.wait() != 0:
                raise RuntimeError(f"emitter exited {emitter.returncode}")
            started = time.monotonic()
            disk.popen.send_signal(signal.SIGCONT)
            seconds[fast] = wait_lines([LineCounter(log_dir / "p8.jsonl")], count) - started
            self.stop(disk)
            self.results[f"P8.{'fast' if fast == 'true' else 'pika'}_s_per_msg"] = (
                seconds[fast] / count
            )
            self.results[f"rss_mb.disk-receiver-32MiB-{fast}"] = disk.max_rss_kb / 1024
        self.results["P8.ratio"] = seconds["true"] / seconds["false"]


P6_RATES = (1000, 5000)
P6_SECONDS = 4.0


def pace(stream: IO[bytes], rate: int, count: int) -> None:
    """Write ``count`` lines at ``rate`` per second, each starting with its write time (ns)."""
    started = time.monotonic()
    sent = 0
    while sent < count:
        due = min(count, int((time.monotonic() - started) * rate) + 1)
        burst = []
        while sent < due:
            burst.append(b"%d p6 line %07d %s\n" % (time.time_ns(), sent, b"x" * 60))
            sent += 1
        stream.write(b"".join(burst))
        stream.flush()
        time.sleep(0.0002)
    stream.close()


TARGETS = {
    "P1.ratio": 1.5,
    "P1H.ratio": 1.5,
    "P2.ratio": 1.5,
    "P3.ratio": 1.0,
    "P2T.ratio": 0.8,
}
MEASUREMENTS = ["P1", "P1H", "P2", "P3", "P3R", "P6", "P7", "P8", "H1"]
# Only when asked for: they start their own brokers in Docker (a 3-node cluster and a single
# node; a broker with both a TLS and a plaintext listener).
ON_REQUEST = ["P1C", "P2T"]
CEILINGS = {f"P6.{rate}.p99_ratio": 2.0 for rate in P6_RATES} | {
    "P7.emitter_slowdown": 1.1,
    "P7.healthy_slowdown": 1.1,
    "P8.ratio": 1.2,
    "H1.ratio": 1.5,
    "H1.broker_down_ratio": 1.5,
    "H1.memory_alarm_ratio": 1.5,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="report the median of the rounds")
    parser.add_argument("--amqp-url", default=DEFAULT_URL)
    parser.add_argument("--only", choices=MEASUREMENTS + ON_REQUEST, action="append")
    args = parser.parse_args()
    names = args.only or MEASUREMENTS
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="logcast-bench-") as tmp, ExitStack() as stack:
        brokers = stack.enter_context(cluster_brokers()) if "P1C" in names else None
        tls = stack.enter_context(tls_broker(Path(tmp))) if "P2T" in names else None
        for number in range(args.rounds):
            work = Path(tmp) / f"round-{number}"
            work.mkdir()
            bench = Bench(args.amqp_url, args.messages, work, brokers, tls)
            for name in names:
                getattr(bench, name.lower())()
            rounds.append(bench.results)
    broker = args.amqp_url.split("@")[-1]
    print(
        f"logcast benchmark: {args.messages} messages of ~100 bytes, broker {broker}, "
        f"median of {args.rounds} rounds (baseline and logcast alternate within each round)"
    )
    for key in rounds[0]:
        values = sorted(r[key] for r in rounds)
        value = statistics.median(values)
        spread = f" [{values[0]:.2f} .. {values[-1]:.2f}]" if len(values) > 1 else ""
        target = ""
        if key in TARGETS:
            target = f"  target >= {TARGETS[key]}x: {'met' if value >= TARGETS[key] else 'MISSED'}"
        elif key in CEILINGS:
            met = "met" if value <= CEILINGS[key] else "MISSED"
            target = f"  target <= {CEILINGS[key]}x: {met}"
        print(f"  {key:32} {value:12.2f}{spread}{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
