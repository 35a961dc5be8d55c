"""Confirm that the pika internals logcast patches exist and have the shape they were tested with.

Attributes that pika creates on instances are found in the names the constructor's code assigns.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pika.connection
import pika.data
from pika import frame, spec
from pika.adapters import base_connection
from pika.adapters.utils import io_services_utils


def _params(function: object, *names: str) -> bool:
    try:
        return tuple(inspect.signature(function).parameters)[: len(names)] == names  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _assigns(cls: type, method: str, *names: str) -> bool:
    """``cls.method`` exists and its code (under pika's decorators) names every one of ``names``."""
    function = getattr(cls, method, None)
    code = getattr(inspect.unwrap(function), "__code__", None) if function is not None else None
    return code is not None and all(name in code.co_names for name in names)


def terminate_stream_usable(connection: type) -> bool:
    """What ``dead_link`` calls, on its own: it needs no patch, so no ``install()``."""
    terminate = getattr(connection, "_terminate_stream", None)
    return terminate is not None and _params(terminate, "self", "error")


def _checks() -> dict[str, Callable[[], bool]]:
    connection = pika.connection.Connection
    transports = io_services_utils
    base = getattr(transports, "_AsyncTransportBase", None)
    ssl_transport = getattr(transports, "_AsyncSSLTransport", None)
    plain = getattr(transports, "_AsyncPlaintextTransport", None)
    return {
        "pika.data.decode_value(encoded, offset)": lambda: (
            _params(pika.data.decode_value, "encoded", "offset")
            and "decode_value" in pika.data.decode_table.__code__.co_names
        ),
        "_AsyncTransportBase._produce(self)": lambda: (
            base is not None and _params(base._produce, "self")
        ),
        "_AsyncTransportBase._tx_buffers": lambda: (
            base is not None and _assigns(base, "__init__", "_tx_buffers")
        ),
        "_AsyncTransportBase._MAX_RECV_BYTES": lambda: (
            base is not None and isinstance(getattr(base, "_MAX_RECV_BYTES", None), int)
        ),
        "_AsyncPlaintextTransport inherits _produce": lambda: (
            plain is not None and "_produce" not in vars(plain)
        ),
        "_AsyncSSLTransport._produce calls super()._produce": lambda: (
            ssl_transport is not None
            and base is not None
            and issubclass(ssl_transport, base)
            and _assigns(ssl_transport, "_produce", "_produce")
        ),
        "Connection._on_data_available(self, data_in)": lambda: _params(
            connection._on_data_available, "self", "data_in"
        ),
        "Connection._process_frame(self, frame_value)": lambda: _params(
            connection._process_frame, "self", "frame_value"
        ),
        "Connection._frame_buffer": lambda: _assigns(
            connection, "_init_connection_state", "_frame_buffer"
        ),
        "Connection.bytes_received/frames_received": lambda: _assigns(
            connection, "_init_connection_state", "bytes_received", "frames_received"
        ),
        "Connection._body_max_length": lambda: _assigns(
            connection, "_on_connection_tune", "_body_max_length"
        ),
        "Connection.bytes_sent/frames_sent": lambda: (
            _assigns(connection, "_init_connection_state", "bytes_sent", "frames_sent")
            and _assigns(connection, "_output_marshaled_frames", "bytes_sent", "frames_sent")
        ),
        "Connection._terminate_stream(self, error)": lambda: terminate_stream_usable(connection),
        "BaseConnection._adapter_emit_data(self, data)": lambda: _params(
            base_connection.BaseConnection._adapter_emit_data, "self", "data"
        ),
        "pika.frame.decode_frame(data_in)": lambda: _params(frame.decode_frame, "data_in"),
        "pika.frame.Header.marshal calls properties.encode()": lambda: _assigns(
            frame.Header, "marshal", "properties", "encode"
        ),
        "spec.BasicProperties.decode(self, encoded)": lambda: _params(
            spec.BasicProperties.decode, "self", "encoded"
        ),
        "spec.Basic.Deliver.INDEX": lambda: isinstance(
            getattr(spec.Basic.Deliver, "INDEX", None), int
        ),
    }


def missing_internals() -> list[str]:
    """Names of the internals that are absent or changed; empty when all are as tested."""
    missing = []
    for name, check in _checks().items():
        try:
            ok = check()
        except Exception:  # any surprise in pika's shape counts as a change
            ok = False
        if not ok:
            missing.append(name)
    return missing
