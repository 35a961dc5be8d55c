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


# ---- resume_after: the numbers read back from an archive -------------------------------------
def test_after_resume_after_older_numbers_are_duplicates_and_the_next_is_new() -> None:
    tracker = SequenceTracker(reorder_seconds=2.0)
    tracker.resume_after("p", 100)
    assert tracker.observe("p", 90, 0.0) == (False, [])
    assert tracker.observe("p", 100, 0.0) == (False, [])
    assert tracker.observe("p", 0, 0.0) == (False, [])  # nothing below is new, or missed
    assert tracker.counts.duplicates == 3
    assert tracker.observe("p", 101, 0.0) == (True, [])
    assert tracker.observe("p", 103, 0.0) == (True, [])
    assert tracker.settle_due(now=1.9) == []
    assert tracker.settle_due(now=2.0) == [Gap("p", 102, 102)]
    assert tracker.counts.missed == 1
    assert tracker.counts.duplicates == 3


def test_resume_after_then_a_jump_counts_exactly_the_numbers_in_between_as_missed() -> None:
    tracker = SequenceTracker(reorder_seconds=0.0)
    tracker.resume_after("p", 5)
    assert tracker.observe("p", 9, 0.0) == (True, [])
    assert tracker.settle_due(now=0.0) == [Gap("p", 6, 8)]
    assert tracker.counts.missed == 3


def test_resume_after_an_unknown_publisher_leaves_the_others_alone() -> None:
    tracker = SequenceTracker(reorder_seconds=0.0)
    for seq in range(11):
        tracker.observe("p", seq, 0.0)
    tracker.resume_after("q", 5)
    assert tracker.observe("p", 10, 0.0) == (False, [])
    assert tracker.observe("p", 11, 0.0) == (True, [])
    assert tracker.observe("q", 5, 0.0) == (False, [])
    assert tracker.observe("q", 6, 0.0) == (True, [])
    assert tracker.settle_due(now=10.0) == []
    assert (tracker.counts.missed, tracker.counts.duplicates) == (0, 2)


def test_resume_after_a_number_the_tracker_is_already_past_changes_nothing() -> None:
    tracker = SequenceTracker(reorder_seconds=0.0)
    for seq in range(50, 201):
        tracker.observe("p", seq, 0.0)
    tracker.resume_after("p", 100)
    assert tracker.observe("p", 150, 0.0) == (False, [])
    assert tracker.observe("p", 200, 0.0) == (False, [])
    assert tracker.observe("p", 201, 0.0) == (True, [])
    # The numbers below the first one seen stay "new once", as before the call.
    assert tracker.observe("p", 20, 0.0) == (True, [])
    assert tracker.observe("p", 20, 0.0) == (False, [])
    assert tracker.settle_due(now=10.0) == []
    assert (tracker.counts.missed, tracker.counts.duplicates, tracker.counts.late) == (0, 3, 0)


def test_resume_after_a_lower_number_than_before_does_not_go_back() -> None:
    tracker = SequenceTracker()
    tracker.resume_after("p", 100)
    tracker.resume_after("p", 40)
    assert tracker.observe("p", 70, 0.0) == (False, [])
    assert tracker.observe("p", 101, 0.0) == (True, [])


def test_resume_after_keeps_to_max_publishers() -> None:
    tracker = SequenceTracker(max_publishers=2)
    for publisher in ("a", "b", "c"):
        tracker.resume_after(publisher, 10)
    assert tracker.observe("c", 10, 0.0) == (False, [])
    assert tracker.observe("b", 10, 0.0) == (False, [])
    assert tracker.observe("a", 10, 0.0) == (True, [])  # the oldest was let go: a fresh start


def test_resume_after_past_a_pending_gap_treats_the_gap_as_seen() -> None:
    tracker = SequenceTracker(reorder_seconds=0.0)
    tracker.observe("p", 0, 0.0)
    tracker.observe("p", 5, 0.0)  # 1..4 wait as a gap
    tracker.resume_after("p", 10)
    assert tracker.observe("p", 3, 0.0) == (False, [])
    assert tracker.settle_due(now=10.0) == []
    assert tracker.counts.missed == 0
