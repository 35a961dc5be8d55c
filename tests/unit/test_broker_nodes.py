"""A list of broker nodes: a random first one, the next after every failure, backoff per round."""

from __future__ import annotations

import pytest

from logcast.amqp_session import BrokerNodes, effective_urls, node_name, run_with_reconnect
from logcast.errors import BrokerUnreachableError, ConnectionLostError
from logcast.settings import CommonSettings
from tests.unit.fakes import QuickStop, isolate_settings_env

URLS = [f"amqp://svc:pw@rmq{n}:5672/%2F" for n in (1, 2, 3)]


def test_the_next_node_after_each_failure_wrapping_around() -> None:
    nodes = BrokerNodes(URLS, start=2)
    seen = []
    for _ in range(4):
        seen.append(node_name(nodes.current))
        nodes.advance()
    assert seen == ["rmq3:5672", "rmq1:5672", "rmq2:5672", "rmq3:5672"]


def test_replicas_start_at_different_nodes() -> None:
    starts = {BrokerNodes(URLS).index for _ in range(200)}
    assert starts == {0, 1, 2}


def test_the_list_comes_from_one_variable_and_every_node_gets_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolate_settings_env(monkeypatch)
    monkeypatch.setenv("LOGCAST_AMQP_URL", "amqp://svc@rmq1/%2F, amqp://svc@rmq2:5673/%2F")
    monkeypatch.setenv("LOGCAST_AMQP_PASSWORD", "s3cr/t")
    urls = effective_urls(CommonSettings())
    assert urls == ["amqp://svc:s3cr%2Ft@rmq1/%2F", "amqp://svc:s3cr%2Ft@rmq2:5673/%2F"]
    assert [node_name(u) for u in urls] == ["rmq1:5672", "rmq2:5673"]


class FailingSession:
    """Never connects; records the node it was given, and moves on as AmqpSession.run does."""

    def __init__(self, nodes: BrokerNodes, tried: list[str]) -> None:
        self.nodes = nodes
        self.tried = tried

    def run(self) -> None:
        self.tried.append(node_name(self.nodes.current))
        self.nodes.advance()
        raise ConnectionLostError("cannot connect: refused", was_ready=False, ready_seconds=0.0)


def test_a_round_of_nodes_is_tried_at_once_and_backoff_applies_between_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolate_settings_env(monkeypatch)
    settings = CommonSettings(amqp_url=URLS, retry_timeout=0.5)
    nodes = BrokerNodes(URLS, start=1)
    stop = QuickStop(cap=0.1)
    tried: list[str] = []
    with pytest.raises(BrokerUnreachableError) as raised:
        run_with_reconnect(lambda: FailingSession(nodes, tried), settings, stop, nodes)  # type: ignore[arg-type, return-value]
    assert tried[:4] == ["rmq2:5672", "rmq3:5672", "rmq1:5672", "rmq2:5672"]
    rounds = [stop.sleeps[i : i + 3] for i in range(0, len(stop.sleeps) - 2, 3)]
    assert rounds, stop.sleeps
    for wait in rounds:
        assert wait[0] == 0.0 and wait[1] == 0.0 and wait[2] >= 0.2  # next node at once
    assert "rmq1:5672" in str(raised.value) and "pw" not in str(raised.value)
