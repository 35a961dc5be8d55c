"""Pipelined confirm bookkeeping: acks, multiple acks, nacks and reconnects."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logcast.confirm_ledger import ConfirmLedger


def test_window_limits_messages_in_flight() -> None:
    ledger: ConfirmLedger[int] = ConfirmLedger(window=3)
    ledger.add(range(10))
    sent = []
    while ledger.can_send():
        sent.append(ledger.take())
    assert sent == [0, 1, 2]
    assert ledger.ack(2, multiple=True) == 2
    assert ledger.can_send()
    assert ledger.in_flight == 1


def test_single_and_multiple_acks() -> None:
    ledger: ConfirmLedger[str] = ConfirmLedger(window=10)
    ledger.add("abcde")
    for _ in range(5):
        ledger.take()
    assert ledger.ack(3, multiple=False) == 1
    assert ledger.ack(4, multiple=True) == 3
    assert ledger.ack(4, multiple=True) == 0  # duplicate ack is harmless
    assert ledger.ack(5, multiple=False) == 1
    assert ledger.settled
    assert ledger.counts.confirmed == 5


def test_nack_and_reconnect_resend_in_order_before_newer_messages() -> None:
    ledger: ConfirmLedger[int] = ConfirmLedger(window=10)
    ledger.add(range(6))
    for _ in range(4):
        ledger.take()  # tags 1..4 carry 0..3
    ledger.nack(2, multiple=True)  # 0 and 1 come back first
    assert ledger.requeue_unconfirmed() == 2  # then 2 and 3
    assert ledger.counts.republished == 0  # lined up, not sent yet
    assert (ledger.sent_unconfirmed, ledger.never_sent) == (4, 2)
    order = [ledger.take() for _ in range(6)]
    assert order == [0, 1, 2, 3, 4, 5]
    assert ledger.counts.nacked == 2
    assert ledger.counts.republished == 4  # the re-sends made: 0, 1 (nacked), 2, 3 (lost)


@given(
    st.lists(
        st.tuples(st.sampled_from(["take", "ack", "ackm", "nack", "drop"]), st.integers(1, 40)),
        max_size=200,
    )
)
def test_every_message_is_confirmed_exactly_once_eventually(ops: list[tuple[str, int]]) -> None:
    ledger: ConfirmLedger[int] = ConfirmLedger(window=8)
    ledger.add(range(30))
    confirmed: list[int] = []
    tags: dict[int, int] = {}
    tag = 0

    def take() -> None:
        nonlocal tag
        tag += 1
        tags[tag] = ledger.take()

    for op, n in ops:
        if op == "take" and ledger.can_send():
            take()
        elif op in ("ack", "ackm"):
            before = ledger.counts.confirmed
            ledger.ack(n, multiple=op == "ackm")
            confirmed.extend([0] * (ledger.counts.confirmed - before))
        elif op == "nack":
            ledger.nack(n, multiple=True)
        elif op == "drop":
            ledger.requeue_unconfirmed()
            tag = 0
    while not ledger.settled:  # a healthy channel from here on: send all, ack all
        ledger.requeue_unconfirmed()
        tag = 0
        while ledger.can_send():
            take()
        ledger.ack(tag, multiple=True)
    assert ledger.counts.confirmed == 30
