"""Settings: precedence, one-line errors naming flag and variable, secrets from files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from logcast.amqp_session import effective_urls, redact_url
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
