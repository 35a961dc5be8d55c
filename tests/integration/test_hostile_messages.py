"""Hostile bodies and properties from a raw client: one escaped line/record each, nothing lost."""

from __future__ import annotations

import datetime
import decimal
from pathlib import Path

import pika

from logcast.log_record import original_body
from tests.integration.broker import Broker
from tests.integration.helpers import disk_records
from tests.services import ServiceProcess, wait_for

MIB = 1024 * 1024

CORPUS: list[tuple[bytes, pika.BasicProperties]] = [
    (b"\x1b[2J\x1b[31mred alert\x1b]0;title\x07", pika.BasicProperties()),
    (b"first\r\nFORGED 2026-01-01T00:00:00Z ERROR host app: fake", pika.BasicProperties()),
    (b"nul\x00inside", pika.BasicProperties(content_type="application/octet-stream")),
    (b"\xff\xfe\xfd not utf-8 \xc3", pika.BasicProperties(content_type="text/plain")),
    (b"x" * MIB, pika.BasicProperties()),
    (b"", pika.BasicProperties()),
    ("c1 \u009b31m and bidi \u202eevil\u2028next".encode(), pika.BasicProperties()),
    (b'{"json": true}', pika.BasicProperties(content_type="application/json")),
    (
        b"odd headers",
        pika.BasicProperties(
            headers={
                "level": 42,
                "host": b"\x1b[1mbytes-host\n",
                "nested": {"a": [1, 2]},
                "when": datetime.datetime(2020, 1, 1),
                "money": decimal.Decimal("1.5"),
                "time_ms": "not a number",
            },
            app_id="app\rwith\ncontrols",
            message_id="id\x1b",
            timestamp=2**40,
        ),
    ),
    (b"error: level from text", pika.BasicProperties(headers={"level": "LOUD"})),
    (b"typed level", pika.BasicProperties(headers={"level": b"CRITICAL"})),
]


def test_receivers_escape_and_keep_every_hostile_message(
    broker: Broker,
    exchange: str,
    receivers: tuple[ServiceProcess, ServiceProcess],
    tmp_path: Path,
) -> None:
    screen, disk = receivers

    connection = broker.blocking()
    channel = connection.channel()
    channel.confirm_delivery()
    for body, properties in CORPUS:
        channel.basic_publish(exchange, "", body, properties, mandatory=True)
    connection.close()

    wait_for(lambda: len(disk_records(tmp_path)) >= len(CORPUS), 15, "all records")
    wait_for(lambda: screen.stdout_path.read_bytes().count(b"\n") >= len(CORPUS), 15, "all lines")
    assert screen.proc.poll() is None and disk.proc.poll() is None

    raw = screen.stdout_path.read_bytes()
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == len(CORPUS)
    forbidden = set(range(0x20)) | {0x7F}
    assert not forbidden & set(raw.replace(b"\n", b""))
    text = raw.decode("utf-8")
    assert not {"\u009b", "\u202e", "\u2028"} & set(text)
    assert "\\x1b[2J\\x1b[31mred alert" in text
    assert "first\\r\\nFORGED" in text
    assert "nul\\x00inside" in text
    assert "\\u202eevil\\u2028next" in text
    assert "\\x1b[1mbytes-host\\n app\\rwith\\ncontrols: odd headers" in text
    assert lines[9].split()[1] == b"ERROR" and lines[10].split()[1] == b"CRITICAL"

    records = disk_records(tmp_path)
    assert len(records) == len(CORPUS)
    for record, (body, _) in zip(records, CORPUS, strict=True):
        assert original_body(record) == body
    assert records[3]["text"] is None and "body_base64" in records[3]
    assert records[8]["level"] == "info" and records[8]["time"] is None
    assert records[8]["message_id"] == "id\x1b"
    assert screen.stop() == 0 and disk.stop() == 0
