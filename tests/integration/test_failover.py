"""A service given several nodes (a comma-separated URL list) moves to the next one when its node
dies (links reset, connections refused) or hangs (nothing gets through, nothing is closed).

Two proxies to the one broker stand in for two nodes of a cluster. A hang is noticed only by
silence: after --heartbeat seconds without a byte (two missed heartbeats) the link is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from tests.integration.broker import Broker
from tests.integration.helpers import screen_texts
from tests.integration.tcp_proxy import CuttableProxy
from tests.services import LineFeeder, ServiceProcess, emit_lines, wait_for

HEARTBEAT = 4
FAILOVER_LIMIT = 15.0


@pytest.fixture
def nodes(broker: Broker) -> Iterator[dict[str, CuttableProxy]]:
    proxies = {}
    for _ in range(2):
        proxy = CuttableProxy(broker.host, broker.port)
        proxies[f"127.0.0.1:{proxy.port}"] = proxy
    yield proxies
    for proxy in proxies.values():
        proxy.close()


def url_list(broker: Broker, nodes: dict[str, CuttableProxy]) -> str:
    return ",".join(
        broker.url_for("guest", "guest", host="127.0.0.1", port=p.port) for p in nodes.values()
    )


def event_time(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


def failover_seconds(service: ServiceProcess, failed_at: float) -> tuple[float, str]:
    """Seconds from the failure to the service's next ``ready``, and the node it is on then."""
    ready = wait_for(
        lambda: (events := service.events("ready")) and len(events) >= 2 and events[1],
        30,
        f"{service.name} ready on another node",
    )
    return event_time(ready) - failed_at, str(ready["node"])


@pytest.mark.parametrize("failure", ["killed", "hung"])
def test_a_receiver_moves_to_the_next_node(
    start_service: Callable[..., ServiceProcess],
    broker: Broker,
    nodes: dict[str, CuttableProxy],
    failure: str,
) -> None:
    urls = url_list(broker, nodes)
    screen = start_service(
        "screen-receiver",
        "--color",
        "never",
        LOGCAST_AMQP_URL=urls,
        LOGCAST_HEARTBEAT=str(HEARTBEAT),
    )
    first = screen.wait_ready()[0]
    assert first["node"] in nodes, first
    failed_at = time.time()
    if failure == "killed":
        nodes[str(first["node"])].go_down()
    else:
        nodes[str(first["node"])].freeze()
    seconds, node = failover_seconds(screen, failed_at)
    print(f"receiver failover after the node was {failure}: {seconds:.1f} s")
    assert node != first["node"]
    assert seconds < FAILOVER_LIMIT
    if failure == "hung":
        assert screen.events("amqp.silent"), screen.stderr()
    lines = [f"after {failure} {i}" for i in range(20)]
    emit_lines(start_service, lines)  # through the broker directly
    wait_for(lambda: screen_texts(screen) == lines or None, 15, "lines on the new node")


@pytest.mark.parametrize("failure", ["killed", "hung"])
def test_an_emitter_moves_to_the_next_node_and_loses_nothing_confirmed(
    start_service: Callable[..., ServiceProcess],
    broker: Broker,
    nodes: dict[str, CuttableProxy],
    failure: str,
) -> None:
    screen = start_service("screen-receiver", "--color", "never")
    screen.wait_ready()
    emitter = start_service(
        "emitter",
        "--stdin",
        stdin=True,
        LOGCAST_AMQP_URL=url_list(broker, nodes),
        LOGCAST_HEARTBEAT=str(HEARTBEAT),
    )
    lines = [f"{failure} line {i:05d}" for i in range(6000)]
    feeder = LineFeeder(emitter, lines, per_second=1000).start()
    first = emitter.wait_ready()[0]
    wait_for(lambda: len(screen_texts(screen)) >= 1000, 15, "lines flowing")
    failed_at = time.time()
    if failure == "killed":
        nodes[str(first["node"])].go_down()
    else:
        nodes[str(first["node"])].freeze()
    seconds, node = failover_seconds(emitter, failed_at)
    print(f"emitter failover after the node was {failure}: {seconds:.1f} s")
    assert node != first["node"]
    assert seconds < FAILOVER_LIMIT
    feeder.join(30)
    assert emitter.proc.wait(60) == 0, emitter.stderr()
    done = emitter.events("emitter.done")[0]
    assert done["confirmed"] == len(lines) and done["unconfirmed"] == 0, done
    wait_for(lambda: set(lines) <= set(screen_texts(screen)) or None, 30, "every line shown")
