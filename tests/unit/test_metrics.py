"""The metrics registry reads its sources at scrape time, in Prometheus' text format."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from logcast.metrics import Kind, MetricsRegistry, Sample


def test_sources_are_read_when_scraped() -> None:
    counts = {"n": 0}
    metrics = MetricsRegistry("disk-receiver")
    metrics.add(lambda: [Sample("written", Kind.COUNTER, "Lines written", counts["n"])])
    metrics.add(lambda: [Sample("queue_backlog", Kind.GAUGE, "Ready", 7)])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    counts["n"] = 41
    text = generate_latest(registry).decode()
    assert 'logcast_written_total{service="disk-receiver"} 41.0' in text
    assert "# TYPE logcast_written_total counter" in text
    assert 'logcast_queue_backlog{service="disk-receiver"} 7.0' in text
    assert "# TYPE logcast_queue_backlog gauge" in text
