"""The broker of P2T: the TLS overlay's broker (deploy/tls/compose.tls.yml) with a plaintext
listener beside it, on loopback ports, started with docker compose and always removed afterwards.
Also makes certificates that the containers' users can read (the e2e TLS test uses it too)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.cluster_brokers import free_port

ROOT = Path(__file__).resolve().parents[1]
FILES = ("docker-compose.yml", "deploy/tls/compose.tls.yml", "bench/tls-broker.yml")


def broker_uid() -> int:
    """The uid of RABBITMQ_IMAGE's rabbitmq user (999 in the official image)."""
    image = os.environ.get("RABBITMQ_IMAGE", "rabbitmq:4-management")
    done = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", image, "-u", "rabbitmq"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return int(done.stdout.strip())


def make_certs(out: Path, *extra_names: str) -> Path:
    """deploy/tls/make-certs.py into ``out``, its keys given to the containers' users (as root),
    or, without root, readable by all: the README's development fallback."""
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)  # bind-mounted: the containers' users must reach the files
    command = [sys.executable, str(ROOT / "deploy/tls/make-certs.py"), str(out)]
    command += [arg for name in extra_names for arg in ("--extra-name", name)]
    if os.geteuid() == 0:
        command += ["--chown-keys", "--broker-uid", str(broker_uid())]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    if os.geteuid() != 0:
        for key in out.glob("*.key"):
            if key.name != "ca.key":
                key.chmod(0o644)
    return out


@dataclass(frozen=True)
class TlsBroker:
    admin_url: str  # plaintext, for the benchmark's own queues
    plaintext_url: str  # the emitter user, with its password
    tls_url: str  # the emitter user, by its certificate
    tls_env: dict[str, str]


@contextmanager
def tls_broker(work: Path) -> Iterator[TlsBroker]:
    certs = make_certs(work / "tls-certs")
    env = os.environ | {
        "LOGCAST_MANAGEMENT_PORT": str(free_port()),
        "LOGCAST_EMITTER_METRICS_PORT": str(free_port()),
        "LOGCAST_AMQPS_PORT": str(free_port()),
        "LOGCAST_TLS_DIR": str(certs),
    }
    compose = ["docker", "compose", "-p", f"logcast-bench-tls-{uuid.uuid4().hex[:6]}"]
    compose += [arg for name in FILES for arg in ("-f", name)]
    passwords = ROOT / "deploy/dev-credentials"
    admin = (passwords / "admin.password").read_text().strip()
    emitter = (passwords / "emitter.password").read_text().strip()
    try:
        subprocess.run(
            [*compose, "up", "-d", "--wait", "--wait-timeout", "240", "rabbitmq"],
            cwd=ROOT, env=env, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        container = subprocess.run(
            [*compose, "ps", "-q", "rabbitmq"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        address = subprocess.run(
            ["docker", "inspect", "-f",
             "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        yield TlsBroker(
            admin_url=f"amqp://admin:{admin}@{address}:5672/%2F",
            plaintext_url=f"amqp://emitter:{emitter}@{address}:5672/%2F",
            tls_url=f"amqps://emitter@{address}:5671/%2F",
            tls_env={
                "LOGCAST_AUTH": "external",
                "LOGCAST_TLS_SERVER_NAME": "rabbitmq",
                "LOGCAST_TLS_CA_FILE": str(certs / "ca.pem"),
                "LOGCAST_TLS_CERT_FILE": str(certs / "emitter.pem"),
                "LOGCAST_TLS_KEY_FILE": str(certs / "emitter.key"),
            },
        )
    finally:
        subprocess.run(
            [*compose, "down", "-v", "--timeout", "15"],
            cwd=ROOT, env=env, check=False, capture_output=True, timeout=240,
        )  # fmt: skip
