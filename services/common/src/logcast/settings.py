"""Settings shared by every service, and loading them from CLI flags + LOGCAST_* variables."""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import (
    AmqpDsn,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    CliApp,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from logcast.errors import UsageError
from logcast.history_stream import MAX_AGE_PATTERN
from logcast.levels import Level

DEFAULT_SECRETS_DIR = Path("/run/secrets")
_SECRET_FIELDS = frozenset({"amqp_url", "amqp_password"})


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _split_urls(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# One broker URL, or a cluster's nodes separated by commas (not JSON, in a variable too).
AmqpUrls = Annotated[list[AmqpDsn], NoDecode, BeforeValidator(_split_urls)]

# Levels are accepted in any case (``ERROR``, ``Error``), as in the tutorial's messages.
LevelSetting = Annotated[Level, BeforeValidator(_lower)]


class AuthMechanism(StrEnum):
    PLAIN = "plain"
    EXTERNAL = "external"


class DiagnosticsLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class CommonSettings(BaseSettings):
    """Connection settings every service takes."""

    model_config = SettingsConfigDict(
        env_prefix="LOGCAST_",
        cli_kebab_case=True,
        cli_show_env_vars=True,
        cli_exit_on_error=False,
        cli_implicit_flags=True,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        extra="ignore",
    )

    amqp_url: AmqpUrls = Field(
        default_factory=lambda: [AmqpDsn("amqp://guest:guest@localhost:5672/%2F")],
        min_length=1,
        max_length=64,
        description="Broker URL (amqp:// or amqps://), or a cluster's nodes separated by commas: "
        "tried from a random one on, the next after a failure; the vhost is the URL path, %2F "
        "for /",
    )
    amqp_password: SecretStr | None = Field(
        None,
        description="Password that replaces the one in the URL; also read from the secrets "
        "file logcast_amqp_password (LOGCAST_SECRETS_DIR, default /run/secrets)",
    )
    exchange: str = Field(
        "logs",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="Fanout exchange that carries the log lines",
    )
    heartbeat: int = Field(30, ge=0, le=600, description="AMQP heartbeat in seconds (0: off)")
    retry_timeout: float = Field(
        60.0,
        ge=0,
        description="Give up (exit 3) when the broker stays unreachable this many seconds; "
        "0 retries forever",
    )
    health_file: Path | None = Field(
        None, description="Heartbeat file kept fresh while connected (for healthchecks)"
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve Prometheus metrics on this port at /metrics (all interfaces); "
        "unset: off",
    )
    diagnostics_level: DiagnosticsLevel = Field(
        DiagnosticsLevel.INFO,
        description="Level of the service's own diagnostics on stderr",
    )
    tls_ca_file: Path | None = Field(
        None,
        description="amqps: CA bundle (PEM) that the broker's certificate must chain to; unset: "
        "the system's trust store",
    )
    tls_cert_file: Path | None = Field(
        None, description="amqps: this client's certificate (PEM), for mutual TLS"
    )
    tls_key_file: Path | None = Field(
        None, description="amqps: the private key (PEM) of --tls-cert-file"
    )
    tls_server_name: str | None = Field(
        None,
        description="amqps: the name the broker's certificate must carry (default: the URL's host)",
    )
    auth: AuthMechanism = Field(
        AuthMechanism.PLAIN,
        description="plain: user and password; external: the client certificate's CN is the "
        "user (needs --tls-cert-file and the broker's rabbitmq_auth_mechanism_ssl)",
    )

    @model_validator(mode="after")
    def _check_tls(self) -> CommonSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("--tls-cert-file and --tls-key-file go together")
        plaintext = [u for u in self.amqp_url if u.scheme != "amqps"]
        uses_tls = self.tls_ca_file or self.tls_cert_file or self.tls_server_name
        if plaintext and (uses_tls or self.auth is AuthMechanism.EXTERNAL):
            raise ValueError(
                "the --tls-* options and --auth external need amqps:// URLs "
                f"(got {plaintext[0].scheme}://{plaintext[0].host})"
            )
        if self.auth is AuthMechanism.EXTERNAL and self.tls_cert_file is None:
            raise ValueError("--auth external needs a client certificate (--tls-cert-file)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Secret files (compose/k8s secrets) only where the directory exists: no warning elsewhere.
        secrets_dir = Path(os.environ.get("LOGCAST_SECRETS_DIR", DEFAULT_SECRETS_DIR))
        if not secrets_dir.is_dir():
            return init_settings, env_settings
        return init_settings, env_settings, SecretsSettingsSource(settings_cls, secrets_dir)


class ReceiverSettings(CommonSettings):
    """Settings both receivers take."""

    prefetch: int = Field(
        4000,
        ge=1,
        le=65535,
        description="Unacked messages in hand, at most (memory: about prefetch x message size)",
    )
    queue_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Bound of the receiver's queue in bytes; when full the oldest lines are "
        "dropped (and counted as missed). 0: unbounded",
    )
    fast_decode: bool = Field(
        True,
        description="Decode deliveries straight from the socket buffer (off: plain pika decoding)",
    )
    history_max_age: str = Field(
        "24h",
        pattern=MAX_AGE_PATTERN,
        description="Retention by age of the history stream <exchange>.history (Y, M, D, h, m, "
        "s), used only if this receiver has to declare it (compose's definitions do)",
    )
    history_max_bytes: int = Field(
        1024**3,
        ge=1,
        description="Retention by size of the history stream, used only if this receiver has "
        "to declare it",
    )


class PublisherSettings(CommonSettings):
    """Settings every publisher takes (the emitter; later any other producer of lines)."""

    confirm_window: int = Field(
        1000, ge=1, le=65535, description="Published messages awaiting a broker confirm, at most"
    )


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def load_settings(cls: type[SettingsT], argv: Sequence[str]) -> SettingsT:
    """CLI flags override LOGCAST_* variables, which override secret files, then defaults."""
    try:
        return CliApp.run(cls, cli_args=list(argv))
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc)) from None
    except SettingsError as exc:
        detail = str(exc).removeprefix("error parsing CLI: ").splitlines()[0]
        raise UsageError(f"invalid command line: {detail}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad setting by flag and variable, without echoing secrets."""
    parts = []
    for error in exc.errors():
        if not error["loc"]:
            parts.append(f"invalid settings: {error['msg'].removeprefix('Value error, ')}")
            continue
        field = str(error["loc"][0])
        flag = "--" + field.replace("_", "-")
        where = f"{flag} / LOGCAST_{field.upper()}"
        shown = "" if field in _SECRET_FIELDS else f" (got {str(error.get('input'))[:60]!r})"
        parts.append(f"invalid {where}: {error['msg']}{shown}")
    return "; ".join(parts)
