"""The brokers of P1C: deploy/cluster's 3-node cluster and a standalone node, on loopback ports,
started with docker compose for the run and always removed afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("docker-compose.yml", "deploy/cluster/compose.yml", "bench/cluster-brokers.yml")
SERVICES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3", "single")


@dataclass(frozen=True)
class Brokers:
    single: str
    nodes: tuple[str, str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def cluster_brokers() -> Iterator[Brokers]:
    ports = {name: free_port() for name in ("1", "2", "3", "single")}
    env = os.environ | {
        "BENCH_NODE_1_PORT": str(ports["1"]),
        "BENCH_NODE_2_PORT": str(ports["2"]),
        "BENCH_NODE_3_PORT": str(ports["3"]),
        "BENCH_SINGLE_PORT": str(ports["single"]),
        "LOGCAST_MANAGEMENT_PORT": str(free_port()),
    }
    compose = ["docker", "compose", "-p", f"logcast-bench-{uuid.uuid4().hex[:6]}"]
    compose += [arg for name in FILES for arg in ("-f", name)]
    password = (ROOT / "deploy/dev-credentials/admin.password").read_text().strip()

    def url(port: int) -> str:
        return f"amqp://admin:{password}@127.0.0.1:{port}/%2F"

    try:
        subprocess.run(
            [*compose, "up", "-d", "--wait", "--wait-timeout", "240", *SERVICES],
            cwd=ROOT, env=env, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        yield Brokers(url(ports["single"]), (url(ports["1"]), url(ports["2"]), url(ports["3"])))
    finally:
        subprocess.run(
            [*compose, "down", "-v", "--timeout", "15"],
            cwd=ROOT, env=env, check=False, capture_output=True, timeout=240,
        )  # fmt: skip
