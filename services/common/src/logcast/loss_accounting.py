"""Per-publisher sequence tracking: what a receiver missed, and what it saw twice.

Every logcast publisher stamps its messages with its id and a sequence number (see wire_format).
A receiver feeds each (publisher, seq) it gets to a ``SequenceTracker``, which answers whether the
message is new or a duplicate, and settles gaps: numbers still missing after ``reorder_seconds``
(or once ``reorder_window`` later numbers have arrived) are counted as missed. A message that
turns up after its gap was settled is a late arrival: it is new after all and leaves the missed
count. Pure bookkeeping: no I/O, time comes in as an argument.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

REORDER_SECONDS = 2.0
REORDER_WINDOW = 10_000
MAX_PUBLISHERS = 10_000
_MISSED_RANGES_KEPT = 64


@dataclass(frozen=True, slots=True)
class Gap:
    """Numbers ``first``..``last`` of ``publisher`` never arrived in time."""

    publisher: str
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass
class LossCounts:
    missed: int = 0
    duplicates: int = 0
    late: int = 0  # arrived after their gap had been counted as missed


@dataclass
class _Track:
    start: int  # the first number seen; what lies below was never ours to miss
    expected: int  # every number from start below this is settled: seen, or counted as missed
    early: set[int] = field(default_factory=set)  # numbers below start seen since (bounded)
    ahead: set[int] = field(default_factory=set)  # seen numbers >= expected
    waiting_since: float | None = None  # when the oldest open gap was first noticed
    missed_ranges: list[tuple[int, int]] = field(default_factory=list)  # recent settled gaps


class SequenceTracker:
    def __init__(
        self,
        *,
        reorder_seconds: float = REORDER_SECONDS,
        reorder_window: int = REORDER_WINDOW,
        max_publishers: int = MAX_PUBLISHERS,
    ) -> None:
        self.reorder_seconds = reorder_seconds
        self.reorder_window = reorder_window
        self.max_publishers = max_publishers
        self.counts = LossCounts()
        self._tracks: OrderedDict[str, _Track] = OrderedDict()

    def observe(self, publisher: str, seq: int, now: float) -> tuple[bool, list[Gap]]:
        """(is it new?, gaps settled because of it). Duplicates are counted here."""
        track = self._tracks.get(publisher)
        if track is None:
            # The first we hear of a publisher: nothing before it is ours to miss.
            self._tracks[publisher] = _Track(start=seq, expected=seq + 1)
            if len(self._tracks) > self.max_publishers:
                self._tracks.popitem(last=False)
            return True, []
        if seq == track.expected and not track.ahead:  # the usual case: next in line
            track.expected += 1
            return True, []
        self._tracks.move_to_end(publisher)
        if seq < track.start:
            # Reordered before the first one we saw (a resend, say): new unless seen already.
            if seq in track.early:
                self.counts.duplicates += 1
                return False, []
            if len(track.early) < self.reorder_window:
                track.early.add(seq)
            return True, []
        if seq < track.expected:
            if self._take_late(track, seq):
                self.counts.late += 1
                self.counts.missed -= 1
                return True, []
            self.counts.duplicates += 1
            return False, []
        if seq in track.ahead:
            self.counts.duplicates += 1
            return False, []
        track.ahead.add(seq)
        self._advance(track)
        if track.ahead and track.waiting_since is None:
            track.waiting_since = now
        gaps = []
        if len(track.ahead) > self.reorder_window:
            gaps = self._settle(publisher, track, keep=self.reorder_window)
        return True, gaps

    def resume_after(self, publisher: str, seq: int) -> None:
        """Treat every number of ``publisher`` up to ``seq`` as seen (read back from an archive):
        a resend of one of them is a duplicate, and nothing before it is counted as missed."""
        track = self._tracks.get(publisher)
        if track is None:
            self._tracks[publisher] = _Track(start=0, expected=seq + 1)
            if len(self._tracks) > self.max_publishers:
                self._tracks.popitem(last=False)
        elif track.expected <= seq:
            track.start = 0
            track.expected = seq + 1
            track.ahead = {n for n in track.ahead if n > seq}
            self._advance(track)

    def settle_due(self, now: float) -> list[Gap]:
        """Count as missed every gap that has waited ``reorder_seconds``; call it periodically."""
        gaps: list[Gap] = []
        for publisher, track in self._tracks.items():
            waiting = track.waiting_since
            if waiting is not None and now - waiting >= self.reorder_seconds:
                gaps += self._settle(publisher, track, keep=0)
        return gaps

    @staticmethod
    def _advance(track: _Track) -> None:
        while track.expected in track.ahead:
            track.ahead.remove(track.expected)
            track.expected += 1
        if not track.ahead:
            track.waiting_since = None

    def _settle(self, publisher: str, track: _Track, *, keep: int) -> list[Gap]:
        """Count the lowest gaps as missed until at most ``keep`` numbers wait ahead."""
        gaps = []
        while len(track.ahead) > keep:
            lowest = min(track.ahead)
            gap = Gap(publisher, track.expected, lowest - 1)
            gaps.append(gap)
            self.counts.missed += gap.count
            track.missed_ranges.append((gap.first, gap.last))
            del track.missed_ranges[:-_MISSED_RANGES_KEPT]
            track.expected = lowest
            self._advance(track)
        return gaps

    @staticmethod
    def _take_late(track: _Track, seq: int) -> bool:
        """Remove ``seq`` from a settled gap if it is in one."""
        ranges = track.missed_ranges
        index = bisect.bisect_right(ranges, (seq, 2**63)) - 1
        if index < 0:
            return False
        first, last = ranges[index]
        if not first <= seq <= last:
            return False
        pieces = [(a, b) for a, b in ((first, seq - 1), (seq + 1, last)) if a <= b]
        ranges[index : index + 1] = pieces
        return True
