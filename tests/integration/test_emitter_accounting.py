"""An emitter stopped mid-stream accounts for every line it read: read = published + unsent.

Exit 0 only when nothing was left unsent or unconfirmed, else 6 with one error line. The lines
that reached a receiver are exactly the first ones read, in order: what was never published is
not delivered, and nothing was sent twice without a reconnect.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.integration.helpers import screen_texts
from tests.services import LineFeeder, ServiceProcess, assert_one_line, stop_timed, wait_for

LINES = 200_000


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_emitter_stopped_mid_stream_accounts_for_every_line(
    delay: float, start_service: Callable[..., ServiceProcess]
) -> None:
    receiver = start_service("screen-receiver", "--color", "never")
    receiver.wait_ready()
    lines = [f"line-{i:06d}" for i in range(LINES)]
    emitter = start_service("emitter", "--stdin", stdin=True)
    feeder = LineFeeder(emitter, lines).start()
    wait_for(lambda: emitter.events("ready"), 10, "emitter ready")
    time.sleep(delay)

    code, took = stop_timed(emitter)
    assert code is not None, "the emitter ignored SIGTERM"
    assert took < 3.0, f"the emitter took {took:.2f}s to stop"
    feeder.join(5)  # the pipe broke when the emitter exited
    assert feeder.broken, "the whole stream was read before the stop: nothing mid-stream"

    done = emitter.events("emitter.done")[0]
    assert 0 < done["read"] < LINES, done
    assert done["read"] == done["published"] + done["unsent"], done
    assert (done["republished"], done["nacked"]) == (0, 0), done
    assert done["confirmed"] + done["unconfirmed"] == done["published"], done
    assert not emitter.events("amqp.connection_lost")
    if done["unsent"] or done["unconfirmed"]:
        assert code == 6, (code, done)
        assert_one_line(emitter.stderr_path.read_bytes(), "emitter: error:")
    else:
        assert code == 0, (code, done)

    # What the receiver got: the first lines read, in order, each once; at least every
    # confirmed one, and nothing beyond what was published.
    wait_for(lambda: len(receiver.stdout().splitlines()) >= done["confirmed"], 20, "the lines")
    assert receiver.stop() == 0, receiver.stderr()
    texts = screen_texts(receiver)
    received = len(texts)
    if texts and texts[-1].endswith(" [logcast: cut at stop]"):
        # The stop landed mid-line: what was read of it went out, marked.
        assert done["cut_at_stop"] == 1
        assert lines[len(texts) - 1].startswith(texts[-1].removesuffix(" [logcast: cut at stop]"))
        texts = texts[:-1]
    assert texts == lines[: len(texts)]
    assert done["confirmed"] <= received <= done["published"], (done, received)
