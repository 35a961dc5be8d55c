"""Everything in logcast that leans on pika internals, checked at start and installed once.

Tested against the pika series pinned in pyproject (``pika~=1.4.4``). What each piece relies on:

- ``tolerant_headers``: replaces ``pika.data.decode_value`` (field-table values; ``decode_table``
  looks the name up at call time) so a header timestamp past year 9999 stays a number instead of
  raising inside frame decoding, which would drop the connection.
- ``coalesced_writes``: wraps ``io_services_utils._AsyncTransportBase._produce``, which both the
  plaintext and the TLS transport use (``_AsyncSSLTransport._produce`` calls it via ``super()``),
  and reads the transport's ``_tx_buffers`` deque.
- ``fast_delivery``: replaces a connection's ``_on_data_available``, reads and writes its
  ``_frame_buffer``, calls ``_process_frame``, counts ``bytes_received``/``frames_received``, and
  raises the transport's ``_MAX_RECV_BYTES``. Uses ``pika.frame.decode_frame``.
- ``fast_properties``: decodes content-header properties in ``spec.BasicProperties``' wire
  order (its ``FLAG_*`` constants and attribute names), handing unusual header values to
  ``pika.data.decode_value``.
- ``fast_publish``: writes a message's frames through the connection's ``_adapter_emit_data``
  (the transport's ``write``), keeping its ``bytes_sent``/``frames_sent`` counters, and reads
  ``_body_max_length`` (frame_max less the frame overhead, set at connection tune).
- ``dead_link``: ends a silent connection through ``Connection._terminate_stream(error)``, as
  pika's heartbeat checker does (plain pika: a ``close()`` that pika's checker ends later). It
  patches nothing and checks its own internal, so it works without ``install()`` too.
- ``encoded_properties``: a ``BasicProperties`` whose ``encode()`` returns bytes made in advance;
  relies on ``pika.frame.Header.marshal`` calling ``properties.encode()`` and prepending to the
  list it gets back.

``install()`` checks every one of these first (``shape_check``). If any is missing or has another
shape, it logs one warning naming it and installs nothing: the services then run on plain pika
(slower, same behaviour): pika's own decoding, ``basic_publish`` and property encoding. It never
half-patches.
"""

from __future__ import annotations

import threading

import structlog

from logcast.pika_internals import coalesced_writes, tolerant_headers
from logcast.pika_internals.shape_check import missing_internals

_lock = threading.Lock()
_state: dict[str, bool] = {}  # "enabled" once install() has decided


def install() -> bool:
    """Check, then patch the process once; True when the fast paths are in use. Idempotent."""
    with _lock:
        if "enabled" not in _state:
            missing = missing_internals()
            if missing:
                structlog.get_logger().warning(
                    "pika.internals_changed",
                    missing=missing,
                    effect="running on plain pika: no fast decode, no coalesced writes",
                )
            else:
                tolerant_headers.install()
                coalesced_writes.install()
            _state["enabled"] = not missing
        return _state["enabled"]


def enabled() -> bool:
    """Whether the fast paths are in use (False before ``install()``)."""
    return _state.get("enabled", False)
