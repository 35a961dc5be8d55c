"""Sequence tracking: every gap is counted as missed once, every repeat as a duplicate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logcast.loss_accounting import Gap, SequenceTracker


def test_a_gap_is_missed_once_settled_and_reported_with_its_range() -> None:
    tracker = SequenceTracker(reorder_seconds=2.0)
    for seq in [5, 6, 7, 11, 12]:
        assert tracker.observe("p", seq, now=0.0) == (True, [])
    assert tracker.settle_due(now=1.9) == []
    assert tracker.settle_due(now=2.0) == [Gap("p", 8, 10)]
    assert tracker.counts.missed == 3
    assert tracker.settle_due(now=10.0) == []


def test_out_of_order_within_the_window_is_not_a_gap() -> None:
    tracker = SequenceTracker(reorder_seconds=2.0)
    for seq in [1, 3, 2, 5, 4]:
        tracker.observe("p", seq, now=0.0)
    assert tracker.settle_due(now=5.0) == []
    assert tracker.counts.missed == 0


def test_duplicates_are_counted_and_not_new() -> None:
    tracker = SequenceTracker()
    assert tracker.observe("p", 1, 0.0)[0]
    assert tracker.observe("p", 2, 0.0)[0]
    assert not tracker.observe("p", 1, 0.0)[0]
    assert tracker.observe("p", 4, 0.0)[0]
    assert not tracker.observe("p", 4, 0.0)[0]
    assert tracker.counts.duplicates == 2


def test_a_late_arrival_leaves_the_missed_count() -> None:
    tracker = SequenceTracker(reorder_seconds=1.0)
    for seq in [0, 1, 5]:
        tracker.observe("p", seq, 0.0)
    tracker.settle_due(now=1.0)
    assert tracker.counts.missed == 3
    assert tracker.observe("p", 3, 2.0) == (True, [])
    assert not tracker.observe("p", 3, 2.0)[0]
    assert (tracker.counts.missed, tracker.counts.late, tracker.counts.duplicates) == (2, 1, 1)


def test_the_window_settles_without_waiting() -> None:
    tracker = SequenceTracker(reorder_window=3)
    tracker.observe("p", 0, 0.0)
    gaps = [gap for seq in range(10, 15) for gap in tracker.observe("p", seq, 0.0)[1]]
    assert gaps == [Gap("p", 1, 9)]


def test_publishers_are_tracked_apart() -> None:
    tracker = SequenceTracker(reorder_seconds=0.0)
    tracker.observe("a", 0, 0.0)
    tracker.observe("b", 100, 0.0)
    tracker.observe("a", 2, 0.0)
    tracker.observe("b", 101, 0.0)
    assert tracker.settle_due(1.0) == [Gap("a", 1, 1)]


@given(
    st.integers(0, 50),
    st.lists(st.integers(0, 199), max_size=300),
    st.lists(st.integers(0, 3), max_size=300),
)
def test_missed_plus_seen_covers_the_range_exactly(
    start: int, picks: list[int], shuffles: list[int]
) -> None:
    """Any subsequence, with repeats and local reordering: after settling, every number between
    the first and the highest seen is either seen once or missed once."""
    deliveries = [start + p for p in sorted(picks)]
    for i, shift in enumerate(shuffles[: max(len(deliveries) - 4, 0)]):
        deliveries[i], deliveries[i + shift] = deliveries[i + shift], deliveries[i]
    tracker = SequenceTracker(reorder_seconds=5.0, reorder_window=50)
    new = [seq for seq in deliveries if tracker.observe("p", seq, now=0.0)[0]]
    tracker.settle_due(now=10.0)
    assert sorted(new) == sorted(set(deliveries))  # every number is new exactly once
    assert tracker.counts.duplicates == len(deliveries) - len(new)
    if deliveries:
        first = deliveries[0]
        seen_from_first = {seq for seq in deliveries if seq >= first}
        assert tracker.counts.missed == max(deliveries) - first + 1 - len(seen_from_first)


def test_a_resend_from_before_the_first_seen_is_new_once() -> None:
    tracker = SequenceTracker()
    tracker.observe("p", 100, 0.0)
    assert tracker.observe("p", 98, 0.0)[0]
    assert not tracker.observe("p", 98, 0.0)[0]
    assert tracker.counts.missed == 0
