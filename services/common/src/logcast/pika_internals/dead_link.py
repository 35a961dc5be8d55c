"""Drop a connection at once, without the closing handshake a hung or cut-off node never answers.

pika's own heartbeat check does the same (``Connection._terminate_stream``), but only every
``heartbeat + 5`` seconds; logcast's sessions watch the bytes received every 0.1 s instead.
It patches nothing, so it also applies where ``install()`` never runs: the logging handler,
which leaves the application's pika as it is.
"""

from __future__ import annotations

import functools
from typing import Any

import pika.connection
import pika.exceptions

from logcast.pika_internals.shape_check import terminate_stream_usable


def drop(connection: Any, reason: str) -> None:
    """The close callback then gets an AMQPHeartbeatTimeout with ``reason``."""
    if _usable():
        connection._terminate_stream(pika.exceptions.AMQPHeartbeatTimeout(reason))
    else:
        # Without the internal: a close the node may never answer; pika's heartbeat check
        # still ends it, later.
        connection.close()


@functools.cache
def _usable() -> bool:
    return terminate_stream_usable(pika.connection.Connection)
