"""A session drops a link that has been silent for --heartbeat seconds, unless its own loop was
the one that stood still."""

from __future__ import annotations

from typing import Any

import pytest

from logcast.consuming import ConsumerSession
from tests.unit.test_consumer_session import Rig

HEARTBEAT = 30  # make_settings' default


class Link:
    """The two things the watch reads of a connection, and the ways it can end one."""

    def __init__(self) -> None:
        self.bytes_received = 100
        self.is_open = True
        self.dropped: list[Any] = []

    def _terminate_stream(self, error: BaseException) -> None:
        self.dropped.append(error)

    def close(self) -> None:
        self.dropped.append("close")


def session_on(link: Link, monkeypatch: pytest.MonkeyPatch) -> ConsumerSession:
    session = Rig(monkeypatch).consumer._new_session()
    session._connection = link
    return session


def watch(session: ConsumerSession, *moments: float) -> None:
    for moment in moments:
        session._watch_silence(moment)


def test_silence_longer_than_the_heartbeat_drops_the_link(monkeypatch: pytest.MonkeyPatch) -> None:
    link = Link()
    session = session_on(link, monkeypatch)
    ticks = [n * 0.1 for n in range(int(HEARTBEAT / 0.1))]
    watch(session, *ticks)
    assert link.dropped == []  # exactly the heartbeat: not yet
    watch(session, HEARTBEAT + 0.1)
    assert len(link.dropped) == 1


def test_bytes_arriving_keep_the_link(monkeypatch: pytest.MonkeyPatch) -> None:
    link = Link()
    session = session_on(link, monkeypatch)
    for n in range(int(2 * HEARTBEAT / 0.1)):
        if n % 100 == 0:
            link.bytes_received += 8  # a heartbeat frame every 10 s
        watch(session, n * 0.1)
    assert link.dropped == []


def test_a_blocked_loop_is_not_blamed_on_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    link = Link()
    session = session_on(link, monkeypatch)
    watch(session, 0.0, 0.1, HEARTBEAT + 5.0)  # the loop stood still (a stalled stdout, say)
    assert link.dropped == []
    ticks = [HEARTBEAT + 5.0 + n * 0.1 for n in range(1, int(HEARTBEAT / 0.1))]
    watch(session, *ticks)
    assert link.dropped == []  # silence counts from when the loop ran again
    watch(session, 2 * HEARTBEAT + 5.2)
    assert len(link.dropped) == 1
