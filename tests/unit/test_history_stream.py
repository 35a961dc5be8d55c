"""The history stream's pure logic: parsing --since / --resume-from, where to attach, the lag."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pika.exceptions
import pytest

from logcast.history_stream import (
    HistoryCursor,
    check_resume_from,
    check_since,
    declare_arguments,
    history_queue,
    missing_queue,
    offset_argument,
    parse_duration,
    parse_time,
    resume_start,
    since_start,
)

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
MARGIN = timedelta(seconds=10)  # how much earlier than the since time a timestamp attaches


def ms(moment: datetime) -> int:
    """Milliseconds since the epoch, computed without floats."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC+05:30 (no DST), so a naive time read as UTC would show."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ---- parse_duration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration_reads_valid_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "5x", "h", "1.5h", "-5m", "30m1h", "1h 30m", " 90s", "90", "s", "1H", "all"],
)
def test_parse_duration_rejects_what_is_not_a_duration(text: str) -> None:
    assert parse_duration(text) is None


# ---- parse_time --------------------------------------------------------------------------------
def test_parse_time_with_z_is_utc() -> None:
    moment = parse_time("2026-12-01T08:00:00Z")
    assert moment == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert moment is not None and moment.utcoffset() == timedelta(0)


def test_parse_time_keeps_an_explicit_offset() -> None:
    moment = parse_time("2026-12-01T08:00:00+02:00")
    assert moment is not None
    assert moment.utcoffset() == timedelta(hours=2)
    assert moment == datetime(2026, 12, 1, 6, tzinfo=UTC)


@pytest.mark.usefixtures("kolkata")
def test_parse_time_without_a_zone_is_local_time() -> None:
    moment = parse_time("2026-12-01T08:00:00")
    assert moment is not None
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(hours=5, minutes=30)
    assert moment == datetime(2026, 12, 1, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "90s", "2026-13-01T00:00:00Z", "all", "next"])
def test_parse_time_rejects_what_is_not_an_iso_time(text: str) -> None:
    assert parse_time(text) is None


# ---- check_since / check_resume_from -------------------------------------------------------------
@pytest.mark.parametrize("text", ["all", "90s", "1h30m", "2d", "2026-12-01T08:00:00Z"])
def test_check_since_passes_valid_values_through(text: str) -> None:
    assert check_since(text) == text


@pytest.mark.parametrize("text", ["", "5x", "h", "first", "next", "yesterday"])
def test_check_since_rejects_the_rest(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        check_since(text)


@pytest.mark.parametrize("text", ["next", "first", "2026-12-01T08:00:00+01:00"])
def test_check_resume_from_passes_valid_values_through(text: str) -> None:
    assert check_resume_from(text) == text


@pytest.mark.parametrize("text", ["", "last", "all", "1h", "5x"])
def test_check_resume_from_rejects_the_rest(text: str) -> None:
    with pytest.raises(ValueError, match="expected 'next', 'first' or an ISO time"):
        check_resume_from(text)


# ---- since_start / resume_start ---------------------------------------------------------------
def test_since_all_attaches_at_the_first_offset_and_hides_nothing() -> None:
    assert since_start("all", NOW) == ("first", None)


@pytest.mark.parametrize(
    ("text", "ago"),
    [("90s", timedelta(seconds=90)), ("1h30m", timedelta(hours=1, minutes=30))],
)
def test_since_a_duration_attaches_earlier_and_shows_from_now_less_the_duration(
    text: str, ago: timedelta
) -> None:
    start, since_ms = since_start(text, NOW)
    assert isinstance(start, datetime)
    assert start == NOW - ago - MARGIN
    assert since_ms == ms(NOW - ago)
    assert ms(start) < since_ms


def test_since_a_duration_follows_the_now_it_is_given() -> None:
    later = NOW + timedelta(minutes=7)
    assert since_start("15m", later)[1] == ms(NOW - timedelta(minutes=8))


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-12-01T08:00:00Z", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01T08:00:00.123Z", datetime(2026, 12, 1, 8, 0, 0, 123000, tzinfo=UTC)),
        ("2026-12-01T10:00:00+02:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ],
)
def test_since_an_iso_time_attaches_earlier_and_shows_from_exactly_then(
    text: str, moment: datetime
) -> None:
    start, since_ms = since_start(text, NOW)
    assert start == moment - MARGIN
    assert since_ms == ms(moment)


@pytest.mark.usefixtures("kolkata")
def test_since_a_naive_iso_time_is_local() -> None:
    _start, since_ms = since_start("2026-12-01T08:00:00", NOW)
    assert since_ms == ms(datetime(2026, 12, 1, 2, 30, tzinfo=UTC))


@pytest.mark.parametrize("text", ["next", "first"])
def test_resume_from_a_name_attaches_there_and_hides_nothing(text: str) -> None:
    assert resume_start(text) == (text, None)


def test_resume_from_an_iso_time_attaches_earlier_and_hides_what_came_before() -> None:
    start, since_ms = resume_start("2026-12-01T09:30:00+01:00")
    moment = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert start == moment - MARGIN
    assert since_ms == ms(moment)


# ---- offset_argument ---------------------------------------------------------------------------
@pytest.mark.parametrize("start", ["first", "next", "last", 0, 42])
def test_offset_argument_passes_names_and_offsets_through(start: str | int) -> None:
    assert offset_argument(start) == start  # type: ignore[arg-type]


def test_offset_argument_converts_a_datetime_to_utc() -> None:
    start = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    argument = offset_argument(start)
    assert isinstance(argument, datetime)
    assert argument.utcoffset() == timedelta(0)
    assert argument.replace(tzinfo=None) == datetime(2026, 12, 1, 8, 0)


# ---- HistoryCursor ---------------------------------------------------------------------------
def test_a_cursor_without_a_position_attaches_at_its_start() -> None:
    assert HistoryCursor(queue="logs.history", start="first").attach_at() == "first"
    assert HistoryCursor(queue="logs.history", start=17).attach_at() == 17
    start = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    attach = HistoryCursor(queue="logs.history", start=start).attach_at()
    assert attach == start
    assert attach.utcoffset() == timedelta(0)


@pytest.mark.parametrize("start", ["first", "next", 5, NOW])
def test_a_cursor_with_a_position_attaches_just_after_it_whatever_its_start(
    start: str | int | datetime,
) -> None:
    cursor = HistoryCursor(queue="logs.history", start=start)  # type: ignore[arg-type]
    cursor.position = 41
    assert cursor.attach_at() == 42
    cursor.position = 0
    assert cursor.attach_at() == 1


def test_lag_is_zero_while_the_tail_is_unknown() -> None:
    cursor = HistoryCursor(queue="logs.history", start="first", position=10)
    assert cursor.lag == 0
    cursor.position = None
    assert cursor.lag == 0


def test_lag_counts_the_offsets_behind_the_tail() -> None:
    cursor = HistoryCursor(queue="logs.history", start="first", position=90, tail=100)
    assert cursor.lag == 10
    cursor.position = None  # nothing read yet: offsets 0..100 are all ahead
    assert cursor.lag == 101
    cursor.position = 100
    assert cursor.lag == 0


def test_lag_is_never_negative_when_the_position_is_past_the_sampled_tail() -> None:
    cursor = HistoryCursor(queue="logs.history", start="first", position=150, tail=100)
    assert cursor.lag == 0


def test_names_and_declare_arguments() -> None:
    assert history_queue("audit") == "audit.history"
    assert declare_arguments("24h", 1024) == {
        "x-queue-type": "stream",
        "x-max-age": "24h",
        "x-max-length-bytes": 1024,
    }


# ---- missing_queue: absent, or only not up yet ---------------------------------------------------
@pytest.mark.parametrize(
    ("code", "text", "missing"),
    [
        (404, "NOT_FOUND - no queue 'logs.history' in vhost '/'", True),
        (
            404,
            "NOT_FOUND - home node 'rabbit@b' of durable queue 'logs.history' in vhost '/' "
            "is down or inaccessible",
            False,
        ),
        (404, "NOT_FOUND - no exchange 'logs' in vhost '/'", False),
        (403, "ACCESS_REFUSED - no queue for you", False),
        (200, "Normal shutdown", False),
    ],
)
def test_missing_queue_tells_an_absent_queue_from_one_not_up_yet(
    code: int, text: str, missing: bool
) -> None:
    assert missing_queue(pika.exceptions.ChannelClosedByBroker(code, text)) is missing


def test_missing_queue_is_false_for_a_reason_without_a_reply() -> None:
    assert missing_queue(pika.exceptions.StreamLostError("Transport indicated EOF")) is False
