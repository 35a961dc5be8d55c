"""The emitter's generated demo lines."""

from __future__ import annotations

from logcast_emitter.demo_lines import paced_demo


def test_demo_sends_exactly_count_lines_with_mixed_levels() -> None:
    batches = list(paced_demo(10_000, 500, lambda _s: None, lambda: False))
    lines = [line for batch in batches for line in batch]
    assert len(lines) == 500
    assert {line.split(":")[0] for line in lines} >= {"debug", "info", "warning", "error"}
