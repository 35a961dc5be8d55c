"""Integration fixtures: a real broker, isolated exchanges, service processes, a cuttable link."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.broker import Broker, provide_broker
from tests.integration.tcp_proxy import CuttableProxy
from tests.services import ServiceProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs a broker (a module-level pytestmark in a conftest
    would not apply to the test modules)."""
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    with provide_broker() as found:
        yield found


@pytest.fixture(autouse=True)
def remove_test_exchange(broker: Broker, exchange: str) -> Iterator[None]:
    """The host broker outlives the run: each test's exchange (and history stream) goes after."""
    yield
    with contextlib.suppress(Exception):
        connection = broker.blocking()
        try:
            channel = connection.channel()
            channel.exchange_delete(exchange)
            channel.queue_delete(f"{exchange}.history")
        finally:
            connection.close()


@pytest.fixture
def service_env(broker: Broker, exchange: str) -> dict[str, str]:
    return {
        "LOGCAST_AMQP_URL": broker.url,
        "LOGCAST_EXCHANGE": exchange,
        "LOGCAST_RETRY_TIMEOUT": "20",
        "LOGCAST_SECRETS_DIR": "/nonexistent",
    }


class ServiceStarter:
    """Starts services for one test; every one is closed when the test ends."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.started: list[ServiceProcess] = []

    def __call__(self, name: str, *args: str, stdin: bool = False, **env: str) -> ServiceProcess:
        process = ServiceProcess(name, list(args), self.env | env, self.tmp_path, stdin=stdin)
        self.started.append(process)
        return process

    def close_all(self) -> None:
        for process in self.started:
            process.close()


@pytest.fixture
def start_service(tmp_path: Path, service_env: dict[str, str]) -> Iterator[ServiceStarter]:
    starter = ServiceStarter(tmp_path, service_env)
    yield starter
    starter.close_all()


@pytest.fixture
def proxy(broker: Broker) -> Iterator[CuttableProxy]:
    link = CuttableProxy(broker.host, broker.port)
    yield link
    link.close()


@pytest.fixture
def receivers(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> tuple[ServiceProcess, ServiceProcess]:
    """A screen-receiver (text, no colour) and a disk-receiver writing to tmp_path, both bound."""
    screen = start_service("screen-receiver", "--color", "never")
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path))
    screen.wait_ready()
    disk.wait_ready()
    return screen, disk


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, to fill up for real (CI runs as root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
