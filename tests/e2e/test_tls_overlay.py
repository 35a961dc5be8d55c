"""The TLS overlay as users run it: make-certs.py, then the stack with deploy/tls/compose.tls.yml.
The broker listens only on 5671, every service is on mutual TLS as its certificate's user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from bench.tls_broker import make_certs
from tests.e2e.conftest import Compose, free_port
from tests.e2e.test_compose_stack import SCALE, all_healthy, delivered_everywhere, send_batch
from tests.services import wait_for

OVERLAY = ("docker-compose.yml", "deploy/tls/compose.tls.yml")
PLAINTEXT_PROBE = """
import socket
for port in (5672, 5671):
    try:
        socket.create_connection(("rabbitmq", port), timeout=5).close()
        print(port, "open")
    except OSError as error:
        print(port, type(error).__name__)
"""


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    certs = make_certs(tmp_path_factory.mktemp("tls-certs"))
    stack = Compose(f"logcast-tls-{uuid.uuid4().hex[:8]}", OVERLAY)
    stack.env |= {"LOGCAST_TLS_DIR": str(certs), "LOGCAST_AMQPS_PORT": str(free_port())}
    try:
        yield stack
    finally:
        stack.run("down", "-v", "--remove-orphans", "--timeout", "15", check=False, timeout=180)


def connections(stack: Compose) -> list[list[str]]:
    """The broker's client connections; none while it restarts."""
    done = stack.run(
        "exec", "-T", "rabbitmq", "rabbitmqctl", "-q", "list_connections",
        "user", "auth_mechanism", "ssl", "peer_cert_subject", check=False, timeout=60,
    )  # fmt: skip
    rows = done.stdout.decode().splitlines()[1:] if done.returncode == 0 else []
    return [row.split("\t") for row in rows if row]


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_tls_overlay_stack(tls_stack: Compose) -> None:
    # 1. the overlay is valid, and the stack comes up healthy, scaled
    tls_stack.run("config", "--quiet")
    tls_stack.run("build", timeout=900)
    tls_stack.run("up", "-d", *SCALE, timeout=300)
    wait_for(lambda: all_healthy(tls_stack), 180, "every container healthy", interval=2)

    # 2. the broker's only AMQP listener is TLS; 5672 refuses connections on the stack's network
    listeners = tls_stack.text("exec", "-T", "rabbitmq", "rabbitmq-diagnostics", "-q", "listeners")
    amqp = [row for row in listeners.splitlines() if "amqp" in row]
    assert len(amqp) == 1 and "port: 5671, protocol: amqp/ssl" in amqp[0], listeners
    assert "port: 5672," not in listeners, listeners
    probe = tls_stack.text("run", "--rm", "-T", "--entrypoint", "python", "emitter", "-c",
                           PLAINTEXT_PROBE)  # fmt: skip
    assert probe.split("\n")[:2] == ["5672 ConnectionRefusedError", "5671 open"], probe

    # 3. every service is on TLS, authenticated by its certificate (EXTERNAL), no password
    wait_for(lambda: len(connections(tls_stack)) == 5, 60, "five connections", 1)
    rows = connections(tls_stack)
    assert all(mech == "EXTERNAL" and ssl == "true" for _, mech, ssl, _ in rows), rows
    assert all(subject == f"CN={user}" for user, _, _, subject in rows), rows
    assert sorted(user for user, *_ in rows) == [
        "disk-receiver", "disk-receiver", "emitter", "screen-receiver", "screen-receiver",
    ]  # fmt: skip

    # 4. lines flow to every replica, also after a broker restart (reconnect over TLS)
    first = send_batch(tls_stack, "tls-first")
    wait_for(lambda: delivered_everywhere(tls_stack, first), 60, "first batch everywhere", 1)
    tls_stack.run("restart", "rabbitmq", timeout=120)
    wait_for(lambda: len(connections(tls_stack)) == 5, 120, "reconnected after restart", 2)
    second = send_batch(tls_stack, "tls-second")
    wait_for(lambda: delivered_everywhere(tls_stack, second), 60, "second batch everywhere", 1)
