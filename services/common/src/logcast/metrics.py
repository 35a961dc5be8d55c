"""Prometheus metrics, read from the counters the services keep anyway.

Nothing is counted twice: a collector reads the summaries' own counters (PublishCounts,
ReceiveCounts, LossCounts...) when Prometheus scrapes, so the hot paths pay nothing for metrics.
Served on ``--metrics-port`` only; off by default. prometheus_client is imported only then, so
the logging handler (which serves nothing) does not need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.core import Metric


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class Sample:
    name: str  # without the logcast_ prefix (and without _total for counters)
    kind: Kind
    help: str
    value: float


Source = Callable[[], Iterable[Sample]]


def session_samples(sessions: int, ready: bool) -> list[Sample]:
    """What publishers and consumers both report about their connection."""
    return [
        Sample("reconnects", Kind.COUNTER, "Sessions after the first", max(sessions - 1, 0)),
        Sample("connected", Kind.GAUGE, "1 while a session is set up and working", int(ready)),
    ]


class MetricsRegistry:
    """Sources register here; scrapes read them. Serving starts only with a port."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._sources: list[Source] = []
        self.port: int | None = None

    def add(self, source: Source) -> None:
        self._sources.append(source)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for source in list(self._sources):
            for sample in source():
                name = f"logcast_{sample.name}"
                family: Metric
                if sample.kind is Kind.COUNTER:
                    family = CounterMetricFamily(name, sample.help, labels=["service"])
                else:
                    family = GaugeMetricFamily(name, sample.help, labels=["service"])
                family.add_metric([self.service], sample.value)
                yield family

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 (containers' own net)
        from prometheus_client import start_http_server
        from prometheus_client.registry import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        start_http_server(port, addr=addr, registry=registry)
        self.port = port
