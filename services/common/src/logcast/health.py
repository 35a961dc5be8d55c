"""A heartbeat file that container healthchecks read: present and fresh means healthy.

Run as ``python -m logcast.health [--max-age S] PATH``: exit 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


class HealthBeacon:
    """Written while the service is usefully connected, removed when it is not."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._last_beat = 0.0

    def up(self, detail: str) -> None:
        if self._path is not None:
            self._path.write_text(detail + "\n", encoding="utf-8")
            self._last_beat = time.monotonic()

    def beat(self, every: float = 5.0) -> None:
        """Refresh the mtime so a hung process turns unhealthy."""
        if self._path is None or time.monotonic() - self._last_beat < every:
            return
        if self._path.exists():
            os.utime(self._path)
            self._last_beat = time.monotonic()

    def down(self) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)


def is_healthy(path: Path, max_age: float, now: float | None = None) -> bool:
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - mtime <= max_age


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m logcast.health")
    parser.add_argument("path", type=Path)
    parser.add_argument("--max-age", type=float, default=20.0)
    args = parser.parse_args(argv)
    healthy = is_healthy(args.path, args.max_age)
    if not healthy:
        print(f"unhealthy: {args.path} missing or older than {args.max_age}s", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
