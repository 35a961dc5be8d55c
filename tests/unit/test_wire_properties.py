"""Our pre-encoded properties are byte for byte what pika would encode."""

from __future__ import annotations

import pika
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pika import frame

from logcast.errors import UsageError
from logcast.levels import Level
from logcast.message import CONTENT_TYPE, TIME_MS_HEADER
from logcast.wire_properties import EncodedProperties, PropertiesEncoder

names = st.text(max_size=60)


@given(
    st.sampled_from(list(Level)),
    names,
    names,
    st.text(min_size=1, max_size=60),
    st.one_of(st.integers(0, 2**31 - 1), st.integers(2**31, 2**62)),
)
def test_matches_pika_encoding(
    level: Level, host: str, app_id: str, message_id: str, time_ms: int
) -> None:
    ours = PropertiesEncoder(host, app_id).encode(level, message_id, time_ms)
    reference = pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=1,
        timestamp=time_ms // 1000,
        message_id=message_id,
        app_id=app_id,
        headers={"level": level.value, "host": host, TIME_MS_HEADER: time_ms},
    )
    assert ours == b"".join(reference.encode())
    assert (
        frame.Header(1, 5, EncodedProperties(ours)).marshal()
        == frame.Header(1, 5, reference).marshal()
    )
    decoded = pika.BasicProperties()
    decoded.decode(ours)
    assert decoded.headers == {"level": level.value, "host": host, "time_ms": time_ms}


def test_overlong_app_id_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--app-id"):
        PropertiesEncoder("host", "é" * 200)
