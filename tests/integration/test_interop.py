"""Our services and the tutorial's emit_log.py / receive_logs.py share one exchange both ways."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.integration.broker import Broker
from tests.integration.helpers import disk_records, screen_texts
from tests.services import ServiceProcess, wait_for


def tutorial_emit(broker: Broker, exchange: str, bodies: list[bytes]) -> None:
    """emit_log.py: declare the fanout exchange, publish plain bodies with no properties."""
    connection = broker.blocking()
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout")
    for body in bodies:
        channel.basic_publish(exchange=exchange, routing_key="", body=body)
    connection.close()


def test_tutorial_publisher_reaches_our_receivers(
    broker: Broker,
    exchange: str,
    receivers: tuple[ServiceProcess, ServiceProcess],
    tmp_path: Path,
) -> None:
    screen, disk = receivers
    tutorial_emit(broker, exchange, [b"info: Hello World!", b"error: from the tutorial"])

    wait_for(lambda: len(disk_records(tmp_path)) == 2, 10, "disk records")
    wait_for(lambda: len(screen.stdout().splitlines()) == 2, 10, "screen lines")
    assert screen_texts(screen) == ["info: Hello World!", "error: from the tutorial"]
    assert " ERROR    - -: error: from the tutorial" in screen.stdout()
    records = disk_records(tmp_path)
    assert [(r["level"], r["host"], r["app"], r["message_id"], r["time"]) for r in records] == [
        ("info", "-", "-", "-", None),
        ("error", "-", "-", "-", None),
    ]
    assert screen.stop() == 0 and disk.stop() == 0


def test_our_emitter_reaches_a_tutorial_receiver(
    broker: Broker, exchange: str, start_service: Callable[..., ServiceProcess]
) -> None:
    """receive_logs.py: exclusive server-named queue, auto_ack; sees the text unchanged."""
    connection = broker.blocking()
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout")
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(exchange=exchange, queue=queue)
    try:
        emitter = start_service("emitter", "warning:", "disk", "almost", "full")
        assert emitter.proc.wait(30) == 0, emitter.stderr()
        default = start_service("emitter")
        assert default.proc.wait(30) == 0, default.stderr()
        got = []
        for method, properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=5):
            if method is None:
                break
            got.append((body, properties))
            if len(got) == 2:
                break
        assert [body for body, _ in got] == [b"warning: disk almost full", b"info: Hello World!"]
        properties = got[0][1]
        assert properties.content_type == "text/plain; charset=utf-8"
        assert properties.headers["level"] == "warning"
        assert properties.app_id == "emitter" and len(properties.message_id) == 32
        assert properties.timestamp > 1_700_000_000
    finally:
        connection.close()
