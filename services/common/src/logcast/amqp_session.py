"""One AMQP connection and channel on pika's SelectConnection, and the reconnect loop around it.

A session only records how it ended; ``run_with_reconnect`` decides whether to connect again.
"""

from __future__ import annotations

import random
import re
import socket
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import pika
import pika.credentials
import pika.exceptions
import tenacity
from pika.adapters.select_connection import IOLoop

from logcast import diagnostics
from logcast.errors import (
    AccessRefusedError,
    BrokerUnreachableError,
    ConnectionLostError,
    LogcastError,
    UsageError,
)
from logcast.pika_internals import dead_link
from logcast.service_main import ServiceContext
from logcast.settings import AuthMechanism, CommonSettings
from logcast.shutdown import StopSignal

_ACCESS_REFUSED = 403
_NOT_ALLOWED = 530
_PRECONDITION_FAILED = 406
_HOUSEKEEPING_SECONDS = 0.1
# A stop must end the process within 2 s whatever the session is doing: close the connection
# after this long, and leave the loop if the close itself hangs (a dead broker).
_STOP_CLOSE_SECONDS = 1.6
_STOP_ABANDON_SECONDS = 1.9
# A session that was ready for less than this did not prove the link healthy (a broker that
# closes right after set-up): from the second such session in a row, reconnects back off.
_STABLE_SECONDS = 5.0


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def effective_urls(settings: CommonSettings) -> list[str]:
    """Every node's URL, with --amqp-password (or the secret file) in place of its password."""
    urls = [str(url) for url in settings.amqp_url]
    if settings.amqp_password is None:
        return urls
    password = quote(settings.amqp_password.get_secret_value(), safe="")
    with_password = []
    for url in urls:
        parts = urlsplit(url)
        netloc = f"{parts.username or ''}:{password}@{parts.hostname}"
        netloc += f":{parts.port}" if parts.port else ""
        with_password.append(urlunsplit(parts._replace(netloc=netloc)))
    return with_password


def node_name(url: str) -> str:
    """host:port of a URL, for logs."""
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    return f"{parts.hostname or 'localhost'}:{port}"


class BrokerNodes:
    """The brokers a service may use: it starts at a random one, so that replicas spread over a
    cluster, and moves to the next whenever a session could not connect or was lost."""

    def __init__(self, urls: list[str], *, start: int | None = None) -> None:
        self.urls = urls
        self.index = random.randrange(len(urls)) if start is None else start % len(urls)

    @property
    def current(self) -> str:
        return self.urls[self.index]

    def advance(self) -> None:
        self.index = (self.index + 1) % len(self.urls)

    def describe(self) -> str:
        return ", ".join(redact_url(url) for url in self.urls)


def tls_refusal(error: BaseException, url: str) -> str | None:
    """One line when the TLS handshake failed on the broker's certificate (not retried)."""
    inner = _innermost(error)
    if isinstance(inner, ssl.SSLCertVerificationError):
        reason = inner.verify_message or inner.reason or str(inner)
        return f"TLS: the certificate of {node_name(url)} does not verify: {reason}"
    if (alert := _client_certificate_alert(error)) is not None:
        if alert == "CERTIFICATE_REQUIRED":
            return (
                f"TLS: {node_name(url)} requires a client certificate: set --tls-cert-file and "
                "--tls-key-file"
            )
        return (
            f"TLS: {node_name(url)} rejected our client certificate "
            f"({alert.lower().replace('_', ' ')}): check --tls-cert-file and the CA the broker "
            "trusts"
        )
    # A TLS listener reads the plaintext protocol header as a bad handshake and hangs up; so
    # does a broker that is shutting down, which must be retried. The listener's answer tells.
    incompatible = pika.exceptions.IncompatibleProtocolError
    parts = urlsplit(url)
    if (
        parts.scheme == "amqp"
        and any(isinstance(e, incompatible) for e in _causes(error))
        and speaks_tls(parts.hostname or "localhost", parts.port or 5672)
    ):
        return (
            f"{node_name(url)} is a TLS listener and the URL is plaintext: use amqps:// "
            "(and --tls-ca-file)"
        )
    return None


# The broker's TLS alerts about our certificate: a refusal, never a passing fault. pika keeps
# the SSLError only as text when it comes after the handshake (TLS 1.3 checks it then).
_CLIENT_CERTIFICATE_ALERT = re.compile(
    r"(?:SSLV3|TLSV1|TLSV13)_ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE"
    r"|CERTIFICATE_(?:REQUIRED|EXPIRED|REVOKED|UNKNOWN))\b"
)


def _client_certificate_alert(error: BaseException) -> str | None:
    for cause in _causes(error):
        found = _CLIENT_CERTIFICATE_ALERT.search(f"{getattr(cause, 'reason', '')} {cause}")
        if found:
            return found.group(1)
    return None


_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def speaks_tls(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether ``host:port`` answers the AMQP protocol header with a TLS alert record."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as probe:
            probe.settimeout(timeout)
            probe.sendall(_AMQP_HEADER)
            reply = probe.recv(7)
    except OSError:
        return False
    return reply[:2] == b"\x15\x03"  # content type "alert", TLS major version 3


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps, outermost first. pika wraps the cause several times:
    AMQPConnectionError(AMQPConnectionWorkflowFailed([..., AMQPConnectorSocketConnectError(
    exception=ConnectionRefusedError(...))]))."""
    chain = [error]
    for _ in range(10):
        inner = chain[-1]
        attempts = getattr(inner, "exceptions", None)
        cause = getattr(inner, "exception", None)
        if attempts:
            chain.append(attempts[-1])
        elif isinstance(cause, BaseException):
            chain.append(cause)
        elif inner.args and isinstance(inner.args[0], BaseException):
            chain.append(inner.args[0])
        else:
            break
    return chain


def _innermost(error: BaseException) -> BaseException:
    return _causes(error)[-1]


def describe_connect_error(error: BaseException, url: str) -> str:
    """One line for a failed connection attempt, naming the host and port (not pika's repr)."""
    host = urlsplit(url).hostname or "localhost"
    where = node_name(url)
    inner = _innermost(error)
    if isinstance(inner, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(inner, socket.gaierror):
        return f"cannot resolve {host}"
    if isinstance(inner, TimeoutError):
        return f"timed out connecting to {where}"
    if isinstance(inner, OSError) and inner.strerror:
        return f"{where}: {inner.strerror}"
    return f"{where}: {type(inner).__name__}" + (f": {inner}" if str(inner) else "")


def tls_context(settings: CommonSettings) -> ssl.SSLContext:
    """Verifying by default, and there is no switch to stop verifying: the broker's chain and
    name are checked against --tls-ca-file, or the system store without one."""
    files = {
        "--tls-ca-file": settings.tls_ca_file,
        "--tls-cert-file": settings.tls_cert_file,
        "--tls-key-file": settings.tls_key_file,
    }
    for flag, path in files.items():
        try:
            if path is not None:
                path.open("rb").close()  # OpenSSL's own errors name no file
        except FileNotFoundError:
            raise UsageError(f"TLS file not found: {flag} {path}") from None
        except OSError as error:
            raise UsageError(f"cannot read the TLS file {flag} {path}: {error.strerror}") from None
    try:
        context = ssl.create_default_context(
            cafile=None if settings.tls_ca_file is None else str(settings.tls_ca_file)
        )
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            context.load_cert_chain(str(settings.tls_cert_file), str(settings.tls_key_file))
    except (ssl.SSLError, OSError) as error:  # read above: a bad PEM, or a key that does not fit
        raise UsageError(f"cannot load the TLS files: {error.strerror or error}") from None
    return context


def connection_parameters(settings: CommonSettings, service: str, url: str) -> pika.URLParameters:
    parts = urlsplit(url)
    if parts.username is not None and parts.password is None:
        # pika cannot parse a user without a password (--auth external has none).
        url = urlunsplit(parts._replace(netloc=parts.netloc.replace("@", ":@", 1)))
    params = pika.URLParameters(url)
    if parts.scheme == "amqps":
        host = parts.hostname or "localhost"
        params.ssl_options = pika.SSLOptions(
            tls_context(settings), server_hostname=settings.tls_server_name or host
        )
        if settings.auth is AuthMechanism.EXTERNAL:
            params.credentials = pika.credentials.ExternalCredentials()
    params.heartbeat = settings.heartbeat
    params.connection_attempts = 1  # retries belong to run_with_reconnect
    params.socket_timeout = 5
    params.blocked_connection_timeout = 60
    params.client_properties = {"connection_name": f"logcast-{service}@{socket.gethostname()}"}
    return params


def declare_logs_exchange(channel: Any, name: str, on_done: Callable[[Any], None]) -> None:
    """Declared exactly as the tutorial does, so its programs and ours share a broker."""
    channel.exchange_declare(
        exchange=name, exchange_type="fanout", durable=False, auto_delete=False, callback=on_done
    )


# How a session opens its connection; tests pass a fake with the same keyword arguments.
Connect = Callable[..., Any]


class SessionOwner(Protocol):
    """The long-lived object (Publisher, Consumer) whose sessions come and go."""

    @property
    def settings(self) -> CommonSettings: ...

    @property
    def context(self) -> ServiceContext: ...

    @property
    def ioloop(self) -> IOLoop: ...

    @property
    def nodes(self) -> BrokerNodes: ...


class AmqpSession(ABC):
    """Owns one connection and one channel; records what happened for the outer loop."""

    def __init__(self, owner: SessionOwner, *, connect: Connect) -> None:
        self.settings = owner.settings
        self.service = owner.context.service
        self.stop: StopSignal = owner.context.stop
        self.ioloop = owner.ioloop
        self.nodes = owner.nodes
        self.url = owner.nodes.current
        self._connect = connect
        # Every event of the session names the node it is on.
        self.log = diagnostics.get_logger().bind(node=node_name(self.url))
        self._ready_at: float | None = None
        self.channel: Any = None
        self._connection: Any = None
        self._fatal: LogcastError | None = None
        self._lost: str | None = None
        self._closing = False
        self._stop_seen_at: float | None = None
        self._timer: Any = None
        self._rx_bytes = -1  # bytes received at the last check, and since when
        self._rx_since = 0.0
        self._last_watch = 0.0

    @property
    def ready(self) -> bool:
        """Set up and doing its job (consuming, or publishing in confirm mode)."""
        return self._ready_at is not None

    @ready.setter
    def ready(self, value: bool) -> None:
        self._ready_at = time.monotonic() if value else None

    # ---- lifecycle ---------------------------------------------------------------------------
    def run(self) -> None:
        """Block until the session ends; raise ConnectionLostError or a LogcastError."""
        self._connection = self._connect(
            connection_parameters(self.settings, self.service, self.url),
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_connection_closed,
            custom_ioloop=self.ioloop,
        )
        self._timer = self.ioloop.call_later(_HOUSEKEEPING_SECONDS, self._housekeeping)
        self.ioloop.start()
        self.ioloop.remove_timeout(self._timer)
        if self._fatal is not None:
            raise self._fatal
        if self._lost is not None:
            self.nodes.advance()  # the next attempt goes to the next node
            ready_for = 0.0 if self._ready_at is None else time.monotonic() - self._ready_at
            raise ConnectionLostError(self._lost, was_ready=self.ready, ready_seconds=ready_for)

    def close(self) -> None:
        """End the session on purpose (done, stopped or failed)."""
        self._closing = True
        connection = self._connection
        if connection is None or connection.is_closed:
            self.ioloop.stop()
        elif not connection.is_closing:
            connection.close()  # also aborts a connection still opening

    @property
    def connection(self) -> Any:
        return self._connection

    def restart(self, reason: str) -> None:
        """End the session as if the link had failed, so that the loop sets up a fresh one."""
        if self._lost is None and self._fatal is None:
            self._lost = reason
        self.close()

    @property
    def ended_on_purpose(self) -> bool:
        """Closed by us (done, stopped), not lost and not failed."""
        return self._closing and self._lost is None and self._fatal is None

    def fail(self, error: LogcastError) -> None:
        if self._fatal is None:
            self._fatal = error
        self.close()

    # ---- hooks for subclasses --------------------------------------------------------------
    @abstractmethod
    def on_exchange_ready(self) -> None:
        """The channel is open and the exchange declared: set up publishing or consuming."""

    @abstractmethod
    def on_stop_requested(self) -> None:
        """SIGTERM/SIGINT arrived: finish what is in hand, then call close()."""

    def on_tick(self) -> None:
        """Called every housekeeping interval while the loop runs."""

    def on_disconnected(self) -> None:
        """The connection is gone, for whatever reason."""

    # ---- pika callbacks ----------------------------------------------------------------------
    def _on_connection_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        declare_logs_exchange(
            channel, self.settings.exchange, lambda _frame: self.on_exchange_ready()
        )

    def _on_open_error(self, _connection: Any, error: BaseException) -> None:
        if isinstance(
            error,
            pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError,
        ):
            self._fatal = AccessRefusedError(
                f"broker refused the credentials for {redact_url(self.url)}"
            )
        elif isinstance(error, pika.exceptions.ProbableAccessDeniedError):
            self._fatal = AccessRefusedError(
                f"broker refused access to the vhost of {redact_url(self.url)}"
            )
        elif (refusal := tls_refusal(error, self.url)) is not None:
            self._fatal = AccessRefusedError(refusal)
        elif not self._closing:
            self._lost = "cannot connect: " + describe_connect_error(error, self.url)
        self.on_disconnected()
        self.ioloop.stop()

    def _on_connection_closed(self, _connection: Any, reason: BaseException) -> None:
        self.channel = None
        if not self._closing and self._fatal is None:
            code = getattr(reason, "reply_code", None)
            if code in (_ACCESS_REFUSED, _NOT_ALLOWED):
                self._fatal = AccessRefusedError(f"broker refused access: {reason}")
            else:
                self._lost = f"connection closed: {reason!r}"
        self.on_disconnected()
        self.ioloop.stop()

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        self.channel = None
        code = getattr(reason, "reply_code", None)
        if isinstance(reason, pika.exceptions.ChannelClosedByBroker) and self._fatal is None:
            text = getattr(reason, "reply_text", str(reason))
            if code == _ACCESS_REFUSED:
                self._fatal = AccessRefusedError(f"broker refused an operation: {text}")
            elif code == _PRECONDITION_FAILED:
                self._fatal = UsageError(f"broker rejected the topology: {text}")
            elif not self._closing:
                self._lost = f"channel closed by broker: {text}"
        if self._connection is not None and self._connection.is_open:
            self._closing = self._closing or self._fatal is not None or self._lost is not None
            self._connection.close()

    def _housekeeping(self) -> None:
        if self.stop.requested:
            now = time.monotonic()
            if self._stop_seen_at is None:
                self._stop_seen_at = now
                if self.ready:
                    self.on_stop_requested()
                else:
                    self.close()
            elif now - self._stop_seen_at > _STOP_ABANDON_SECONDS:
                self.log.warning("stop.abandoned", hint="the broker did not answer the close")
                self.ioloop.stop()
                return
            elif now - self._stop_seen_at > _STOP_CLOSE_SECONDS and not self._closing:
                self.log.warning("stop.forced", hint="closing without finishing the session")
                self.close()
        self._watch_silence(time.monotonic())
        self.on_tick()
        self._timer = self.ioloop.call_later(_HOUSEKEEPING_SECONDS, self._housekeeping)

    def _watch_silence(self, now: float) -> None:
        """A node that hangs or is cut off (no FIN) sends nothing, heartbeats included: after
        --heartbeat seconds of silence (two missed heartbeats) the connection is dropped, and
        the next session goes to the next node."""
        connection = self._connection
        limit = self.settings.heartbeat
        received = getattr(connection, "bytes_received", None)
        if not limit or received is None or not connection.is_open or self._closing:
            return
        stalled = now - self._last_watch > 1.0  # our loop was blocked: the node is not to blame
        self._last_watch = now
        if received != self._rx_bytes or stalled:
            self._rx_bytes, self._rx_since = received, now
        elif now - self._rx_since > limit:
            silent = round(now - self._rx_since, 1)
            self.log.warning("amqp.silent", seconds=silent, hint="node hung or cut off")
            dead_link.drop(connection, f"nothing received from {node_name(self.url)} for {silent}s")


def run_with_reconnect(
    make_session: Callable[[], AmqpSession],
    settings: CommonSettings,
    stop: StopSignal,
    nodes: BrokerNodes,
) -> None:
    """Run sessions until one ends cleanly; reconnect with backoff and jitter when the link fails.

    A failed attempt goes on to the next node at once; the backoff applies after a whole round.
    It restarts after a session that was ready, so a broker restart costs one short wait.
    Sessions that keep ending soon after they got ready back off too, from the second in a row.
    """
    log = diagnostics.get_logger()
    flaps = 0
    give_up = (
        tenacity.stop_after_delay(settings.retry_timeout)
        if settings.retry_timeout
        else (tenacity.stop_never)
    )

    def should_retry(error: BaseException) -> bool:
        return isinstance(error, ConnectionLostError) and not error.was_ready and not stop.requested

    def announce(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "amqp.retrying", reason=getattr(error, "reason", repr(error)), wait=round(wait, 2)
        )

    def attempt() -> None:
        if not stop.requested:
            make_session().run()

    def wait_before(state: tenacity.RetryCallState) -> float:
        rounds, within = divmod(state.attempt_number, len(nodes.urls))
        if within:
            return 0.0
        return float(min(5.0, 0.2 * 2.0 ** (rounds - 1) + random.uniform(0, 0.5)))

    while True:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(should_retry),
            wait=wait_before,
            stop=give_up,
            sleep=stop.sleep,
            before_sleep=announce,
            reraise=True,
        )
        try:
            retrying(attempt)
            return
        except ConnectionLostError as error:
            if stop.requested:
                return
            if error.was_ready:
                flaps = flaps + 1 if error.ready_seconds < _STABLE_SECONDS else 0
                wait = min(5.0, 0.2 * 2 ** (flaps - 2)) if flaps >= 2 else 0.0
                log.warning("amqp.connection_lost", reason=error.reason, wait=round(wait, 2))
                if wait:
                    stop.sleep(wait)
                continue
            raise BrokerUnreachableError(
                f"broker at {nodes.describe()} unreachable for "
                f"{settings.retry_timeout:g}s: {error.reason}"
            ) from None
