"""Settings: precedence, one-line errors naming flag and variable, secrets from files."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from logcast.amqp_session import connection_parameters, effective_urls, redact_url
from logcast.errors import UsageError
from logcast.levels import Level
from logcast.settings import CommonSettings, load_settings
from logcast_disk_receiver.main import DiskSettings
from logcast_emitter.main import EmitterSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("LOGCAST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LOGCAST_SECRETS_DIR", "/nonexistent")


def test_flag_beats_variable_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGCAST_MAX_BYTES", "100")
    assert load_settings(DiskSettings, []).max_bytes == 100
    assert load_settings(DiskSettings, ["--max-bytes", "7"]).max_bytes == 7
    assert load_settings(DiskSettings, []).backup_count == 5


def test_level_in_any_case_and_words() -> None:
    settings = load_settings(EmitterSettings, ["--level", "ERROR", "disk", "full"])
    assert settings.level is Level.ERROR
    assert settings.message == ["disk", "full"]


def test_error_line_names_flag_and_variable() -> None:
    with pytest.raises(UsageError) as error:
        load_settings(DiskSettings, ["--max-bytes", "-1"])
    assert error.value.message.startswith("invalid --max-bytes / LOGCAST_MAX_BYTES:")
    assert "\n" not in error.value.message


def test_password_comes_from_secret_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "logcast_amqp_password").write_text("s3cr3t/pw\n")
    monkeypatch.setenv("LOGCAST_SECRETS_DIR", str(tmp_path))
    settings = load_settings(CommonSettings, ["--amqp-url", "amqp://svc@broker:5672/%2F"])
    assert settings.amqp_password == SecretStr("s3cr3t/pw")
    assert effective_urls(settings) == ["amqp://svc:s3cr3t%2Fpw@broker:5672/%2F"]
    assert redact_url(effective_urls(settings)[0]) == "amqp://svc:***@broker:5672/%2F"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--tls-cert-file", "c.pem"], "--tls-cert-file and --tls-key-file go together"),
        (["--tls-ca-file", "ca.pem"], "need amqps:// URLs (got amqp://localhost)"),
        (
            ["--amqp-url", "amqps://h/%2F", "--auth", "external"],
            "--auth external needs a client certificate",
        ),
        (["--amqp-url", "amqps://h/%2F", "--auth", "kerberos"], "--auth / LOGCAST_AUTH"),
    ],
)
def test_tls_settings_are_checked_together(argv: list[str], named: str) -> None:
    with pytest.raises(UsageError) as raised:
        load_settings(CommonSettings, argv)
    assert named in raised.value.message


def test_amqps_verifies_by_default_and_external_auth_has_no_password(tmp_path: Path) -> None:
    settings = load_settings(CommonSettings, ["--amqp-url", "amqps://emitter@broker:5671/%2F"])
    params = connection_parameters(settings, "emitter", "amqps://emitter@broker:5671/%2F")
    context = params.ssl_options.context
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert params.ssl_options.server_hostname == "broker"
    missing = load_settings(
        CommonSettings,
        ["--amqp-url", "amqps://e@broker/%2F", "--tls-ca-file", str(tmp_path / "none.pem")],
    )
    with pytest.raises(UsageError, match="TLS file not found"):
        connection_parameters(missing, "emitter", "amqps://e@broker/%2F")
    # Unreadable (here a directory; root reads any mode): the line names the flag and the path.
    unreadable = load_settings(
        CommonSettings,
        ["--amqp-url", "amqps://e@broker/%2F", "--auth", "external",
         "--tls-cert-file", str(tmp_path), "--tls-key-file", str(tmp_path)],
    )  # fmt: skip
    with pytest.raises(UsageError, match=f"cannot read the TLS file --tls-cert-file {tmp_path}: "):
        connection_parameters(unreadable, "emitter", "amqps://e@broker/%2F")
