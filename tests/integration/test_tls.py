"""amqps end to end against a TLS-only broker (RABBITMQ_IMAGE, deploy/tls/tls.conf) with the
certificates of deploy/tls/make-certs.py: mutual TLS, external auth, and one-line errors."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import disk_records, screen_texts
from tests.services import ServiceProcess, assert_one_line, run_service, wait_for

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("RABBITMQ_IMAGE", "rabbitmq:4-management")


def docker_ok() -> bool:
    return shutil.which("docker") is not None and (
        subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [sys.executable, str(ROOT / "deploy/tls/make-certs.py"), str(out),
         "--extra-name", "localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def tls_port(certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not docker_ok():
        if os.environ.get("LOGCAST_REQUIRE_DOCKER") == "1":
            pytest.fail("LOGCAST_REQUIRE_DOCKER=1 but no Docker engine is reachable")
        pytest.skip("no Docker engine for the TLS broker")
    mounted = tmp_path_factory.mktemp("broker-tls")
    mounted.chmod(0o755)
    for name in ("ca.pem", "broker.pem", "broker.key"):
        shutil.copy(certs / name, mounted / name)
        (mounted / name).chmod(0o644)  # the broker runs as its own user; a test copy only
    name = f"logcast-tls-{uuid.uuid4().hex[:8]}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    volumes = {
        ROOT / "deploy/rabbitmq/rabbitmq.conf": "/etc/rabbitmq/rabbitmq.conf",
        ROOT / "deploy/rabbitmq/definitions.json": "/etc/rabbitmq/definitions.json",
        ROOT / "deploy/tls/tls.conf": "/etc/rabbitmq/conf.d/30-tls.conf",
        ROOT / "deploy/tls/enabled_plugins": "/etc/rabbitmq/enabled_plugins",
        mounted: "/etc/rabbitmq/tls",
    }
    mounts = [arg for src, dst in volumes.items() for arg in ("-v", f"{src}:{dst}:ro")]
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5671", *mounts, IMAGE],
        check=True, capture_output=True,
    )  # fmt: skip
    try:

        def listening() -> bool:
            done = subprocess.run(
                ["docker", "exec", name, "rabbitmq-diagnostics", "-q", "check_port_listener",
                 "5671"],
                capture_output=True, check=False,
            )  # fmt: skip
            return done.returncode == 0

        wait_for(listening, 120, "the TLS broker listening on 5671", 1)
        yield port
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


@pytest.fixture
def tls_env(
    certs: Path, tls_port: int, service_env: dict[str, str]
) -> Callable[[str], dict[str, str]]:
    def env(service: str) -> dict[str, str]:
        return service_env | {
            "LOGCAST_AMQP_URL": f"amqps://{service}@localhost:{tls_port}/%2F",
            "LOGCAST_TLS_CA_FILE": str(certs / "ca.pem"),
            "LOGCAST_TLS_CERT_FILE": str(certs / f"{service}.pem"),
            "LOGCAST_TLS_KEY_FILE": str(certs / f"{service}.key"),
            "LOGCAST_AUTH": "external",
            "LOGCAST_EXCHANGE": "logs",  # the definitions' permissions name it
        }

    return env


def test_services_and_handler_over_mutual_tls_with_certificate_users(
    start_service: Callable[..., ServiceProcess],
    tls_env: Callable[[str], dict[str, str]],
    tmp_path: Path,
) -> None:
    screen = start_service("screen-receiver", "--color", "never", **tls_env("screen-receiver"))
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path), **tls_env("disk-receiver"))
    screen.wait_ready(timeout=30)
    disk.wait_ready(timeout=30)
    tag = uuid.uuid4().hex[:8]
    lines = [f"warning: tls {tag} {i}" for i in range(50)]
    payload = ("\n".join(lines) + "\n").encode()
    done = run_service("emitter", ["--stdin"], tls_env("emitter"), input_bytes=payload)
    assert done.returncode == 0, done.stderr.decode()
    handler = subprocess.run(
        [sys.executable, "-c",
         "import logging; from logcast.handler import LogcastHandler;"
         "h = LogcastHandler(app_id='tls-app'); logging.getLogger().addHandler(h);"
         f"logging.getLogger('app').error('handler over tls {tag}'); h.flush(10);"
         "print(h.dropped)"],
        env=os.environ | tls_env("emitter"), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert handler.returncode == 0 and handler.stdout.split() == ["0"], handler.stderr
    wanted = [*lines, f"handler over tls {tag}"]
    try:
        wait_for(lambda: set(wanted) <= set(screen_texts(screen)), 30, "lines on the screen", 0.2)
    except AssertionError:
        raise AssertionError(f"{screen_texts(screen)[-3:]} {wanted[-2:]}") from None
    wait_for(lambda: {r["text"] for r in disk_records(tmp_path)} >= set(wanted), 30, "on disk", 0.2)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"LOGCAST_TLS_CA_FILE": ""}, "does not verify: self-signed certificate in certificate"),
        ({"LOGCAST_TLS_SERVER_NAME": "wrong.example"}, "Hostname mismatch"),
        ("plaintext", "is a TLS listener and the URL is plaintext"),
        ("foreign-client-cert", "rejected our client certificate (unknown ca)"),
        ("no-client-cert", "requires a client certificate: set --tls-cert-file"),
    ],
)
def test_tls_failures_are_one_line_and_exit_4(
    tls_env: Callable[[str], dict[str, str]],
    tls_port: int,
    change: object,
    expected: str,
    tmp_path: Path,
) -> None:
    env = tls_env("emitter") | {"LOGCAST_RETRY_TIMEOUT": "30"}
    if change == "foreign-client-cert":  # signed by a CA the broker does not trust
        subprocess.run(
            [sys.executable, str(ROOT / "deploy/tls/make-certs.py"), str(tmp_path)],
            check=True, capture_output=True,
        )  # fmt: skip
        env |= {
            "LOGCAST_TLS_CERT_FILE": str(tmp_path / "emitter.pem"),
            "LOGCAST_TLS_KEY_FILE": str(tmp_path / "emitter.key"),
        }
    elif change == "no-client-cert":
        for key in ("LOGCAST_TLS_CERT_FILE", "LOGCAST_TLS_KEY_FILE"):
            env.pop(key)
        env |= {
            "LOGCAST_AUTH": "plain",
            "LOGCAST_AMQP_URL": f"amqps://emitter:x@localhost:{tls_port}/%2F",
        }
    elif change == "plaintext":
        for key in ("LOGCAST_TLS_CA_FILE", "LOGCAST_TLS_CERT_FILE", "LOGCAST_TLS_KEY_FILE"):
            env.pop(key)
        env |= {"LOGCAST_AUTH": "plain", "LOGCAST_AMQP_URL": f"amqp://e:p@localhost:{tls_port}/%2F"}
    else:
        assert isinstance(change, dict)
        env |= change
        if env.get("LOGCAST_TLS_CA_FILE") == "":
            env.pop("LOGCAST_TLS_CA_FILE")
    done = run_service("emitter", ["info: nope"], env, timeout=20)
    assert done.returncode == 4, done.stderr.decode()
    assert_one_line(done.stderr, "emitter: error:", expected)


def test_certificate_users_keep_least_privilege(
    tls_env: Callable[[str], dict[str, str]],
) -> None:
    """The emitter's certificate cannot consume; a receiver's cannot publish."""
    as_emitter = tls_env("emitter")
    receiver_as_emitter = run_service("screen-receiver", [], as_emitter, timeout=20)
    assert receiver_as_emitter.returncode == 4, receiver_as_emitter.stderr.decode()
    assert b"ACCESS_REFUSED" in receiver_as_emitter.stderr
    emitter_as_receiver = run_service(
        "emitter", ["info: x"], tls_env("screen-receiver"), timeout=20
    )
    assert emitter_as_receiver.returncode == 4, emitter_as_receiver.stderr.decode()
    assert b"ACCESS_REFUSED" in emitter_as_receiver.stderr
