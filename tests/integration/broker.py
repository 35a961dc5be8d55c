"""The broker the integration suite talks to: LOGCAST_TEST_AMQP_URL, or one in testcontainers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import pika


@dataclass(frozen=True)
class Broker:
    url: str  # with administrator (guest) credentials
    ctl: Callable[..., str]  # runs rabbitmqctl on the broker's node

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "localhost"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 5672

    def url_for(
        self, user: str, password: str, *, host: str | None = None, port: int | None = None
    ) -> str:
        return f"amqp://{user}:{password}@{host or self.host}:{port or self.port}/%2F"

    def blocking(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.URLParameters(self.url))


def _local_ctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


@contextmanager
def provide_broker() -> Iterator[Broker]:
    url = os.environ.get("LOGCAST_TEST_AMQP_URL")
    if url:
        yield Broker(url=url, ctl=_local_ctl)
        return
    # testcontainers reads these at import; ryuk cannot be pulled without a registry, and
    # the container is removed by the context manager anyway.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.community.rabbitmq import RabbitMqContainer

    image = os.environ.get("RABBITMQ_IMAGE", "rabbitmq:4-management")
    with RabbitMqContainer(image=image) as container:
        params = container.get_connection_params()

        def container_ctl(*args: str) -> str:
            code, output = container.exec(["rabbitmqctl", "-q", *args])
            if code != 0:
                raise RuntimeError(f"rabbitmqctl {args} failed: {output!r}")
            return bytes(output).decode()

        yield Broker(url=f"amqp://guest:guest@{params.host}:{params.port}/%2F", ctl=container_ctl)
