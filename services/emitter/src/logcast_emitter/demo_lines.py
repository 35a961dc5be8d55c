"""Realistic generated log lines with mixed levels, for the compose demo."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

from logcast.levels import Level

_WEIGHTED_LEVELS = [
    (Level.DEBUG, 20),
    (Level.INFO, 55),
    (Level.WARNING, 15),
    (Level.ERROR, 8),
    (Level.CRITICAL, 2),
]
_TEMPLATES = {
    Level.DEBUG: ["cache lookup key=user:{n} hit={flag}", "sql took {ms}ms rows={n}"],
    Level.INFO: [
        "GET /api/orders/{n} 200 {ms}ms",
        "user {n} logged in from 10.0.{a}.{b}",
        "job invoice-{n} finished in {ms}ms",
    ],
    Level.WARNING: ["slow request POST /api/cart {ms}ms", "retrying payment {n} (attempt {a})"],
    Level.ERROR: ["payment {n} failed: card declined", "upstream timeout after {ms}ms"],
    Level.CRITICAL: ["database connection pool exhausted ({a}/{a})", "disk usage at 9{b}%"],
}


def demo_line(rng: random.Random) -> str:
    levels, weights = zip(*_WEIGHTED_LEVELS, strict=True)
    level = rng.choices(levels, weights)[0]
    template = rng.choice(_TEMPLATES[level])
    text = template.format(
        n=rng.randint(1, 99999),
        ms=rng.randint(1, 3000),
        a=rng.randint(1, 9),
        b=rng.randint(0, 9),
        flag=rng.choice(["true", "false"]),
    )
    return f"{level.value}: {text}"


def paced_demo(
    rate: float,
    count: int | None,
    sleep: Callable[[float], None],
    stopped: Callable[[], bool],
    rng: random.Random | None = None,
) -> Iterator[list[str]]:
    """Batches of lines at ``rate`` per second on average, ``count`` in all (None: forever)."""
    rng = rng or random.Random()
    tick = 0.1 if rate >= 10 else 1.0 / rate
    started = time.monotonic()
    sent = 0
    while not stopped() and (count is None or sent < count):
        due = int((time.monotonic() - started) * rate) + 1
        if count is not None:
            due = min(due, count)
        if due > sent:
            yield [demo_line(rng) for _ in range(due - sent)]
            sent = due
        sleep(tick)
