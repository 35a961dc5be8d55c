"""Reading what the receivers produced, for assertions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.services import ServiceProcess

COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # the receiver's own level colours
TEXT_LINE = re.compile(
    r"^(?P<time>\S+) (?P<level>[A-Z]+) +(?P<host>\S+) (?P<app>\S+): (?P<text>.*)$"
)


def screen_texts(receiver: ServiceProcess) -> list[str]:
    texts = []
    for line in receiver.stdout().splitlines():
        match = TEXT_LINE.match(COLOUR.sub("", line))
        assert match, f"unexpected screen line {line!r}"
        texts.append(match["text"])
    return texts


def screen_json_records(receiver: ServiceProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in receiver.stdout().splitlines()]


def disk_records(log_dir: Path) -> list[dict[str, Any]]:
    files = sorted(log_dir.glob("*.jsonl"))
    assert len(files) == 1, f"expected one file, found {files}"
    data = files[0].read_bytes()
    assert not data or data.endswith(b"\n"), "file ends inside a record"
    return [json.loads(line) for line in data.splitlines()]
