"""A dropped link: receivers rebind a fresh queue, the emitter republishes and exits 0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.integration.broker import Broker
from tests.integration.helpers import disk_records, screen_texts
from tests.integration.tcp_proxy import CuttableProxy
from tests.services import ServiceProcess, wait_for

PHASE = 2000


def test_receivers_and_emitter_survive_a_cut_link(
    broker: Broker,
    proxy: CuttableProxy,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    via_proxy = {
        "LOGCAST_AMQP_URL": broker.url_for("guest", "guest", host="127.0.0.1", port=proxy.port)
    }
    screen = start_service("screen-receiver", "--color", "never", **via_proxy)
    disk = start_service("disk-receiver", "--log-dir", str(tmp_path), **via_proxy)
    first_queues = {screen.wait_ready()[0]["queue"], disk.wait_ready()[0]["queue"]}

    emitter = start_service("emitter", "--stdin", stdin=True, **via_proxy)
    assert emitter.proc.stdin is not None
    before = [f"before-{i}" for i in range(PHASE)]
    emitter.proc.stdin.write(("\n".join(before) + "\n").encode())
    emitter.proc.stdin.flush()
    wait_for(lambda: emitter.events("ready"), 10, "emitter connected")
    wait_for(lambda: len(screen.stdout().splitlines()) > 100, 10, "traffic flowing")

    assert proxy.cut() >= 3  # emitter, screen and disk links
    second = [screen.wait_ready(2)[1], disk.wait_ready(2)[1]]
    assert {event["queue"] for event in second}.isdisjoint(first_queues)
    assert all(event["queue"].startswith("amq.gen-") for event in second)

    after = [f"after-{i}" for i in range(PHASE)]
    emitter.proc.stdin.write(("\n".join(after) + "\n").encode())
    emitter.proc.stdin.close()
    assert emitter.proc.wait(60) == 0, emitter.stderr()
    done = emitter.events("emitter.done")[0]
    assert done["unconfirmed"] == 0
    assert done["confirmed"] == 2 * PHASE
    assert any(e["event"] == "amqp.connection_lost" for e in emitter.events())

    def arrived(texts: list[str]) -> bool:
        return set(after) <= set(texts)

    wait_for(lambda: arrived(screen_texts(screen)), 30, "phase two on screen")
    wait_for(lambda: arrived([r["text"] for r in disk_records(tmp_path)]), 30, "phase two on disk")
    for receiver in (screen, disk):
        assert receiver.stop() == 0, receiver.stderr()
        # Nothing but this run's lines, each phase-two line exactly once, in order.
        texts = (
            screen_texts(screen)
            if receiver is screen
            else [r["text"] for r in disk_records(tmp_path)]
        )
        assert set(texts) <= set(before) | set(after)
        assert [t for t in texts if t.startswith("after-")] == after
