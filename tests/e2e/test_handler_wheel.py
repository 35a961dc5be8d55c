"""The shared package as an application installs it: its wheel, in a clean venv, with only what
the logging handler needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.conftest import ROOT

# The handler's dependencies and theirs; nothing of the services (prometheus-client) or the tests.
EXPECTED = {
    "annotated-types",
    "logcast-common",
    "pika",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "structlog",
    "tenacity",
    "typing-extensions",
    "typing-inspection",
}


def run(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def test_the_wheel_installs_alone_and_brings_only_the_handlers_dependencies(
    tmp_path: Path,
) -> None:
    run("uv", "build", "--wheel", "--package", "logcast-common", "-o", str(tmp_path / "dist"))
    (wheel,) = (tmp_path / "dist").glob("logcast_common-*.whl")
    venv = tmp_path / "venv"
    run("uv", "venv", "--quiet", str(venv))
    python = str(venv / "bin" / "python")
    run("uv", "pip", "install", "--quiet", "--python", python, str(wheel))
    listed = run("uv", "pip", "freeze", "--python", python)
    installed = {line.split("==")[0].split(" @ ")[0].lower() for line in listed.splitlines()}
    assert installed == EXPECTED, installed ^ EXPECTED
    # Importable and usable without a broker: records wait in the buffer, close keeps its bound.
    out = run(
        python,
        "-c",
        "import logging; from logcast.handler import LogcastHandler;"
        "h = LogcastHandler('amqp://u:p@127.0.0.1:1/%2F', close_timeout=0.2, buffer=5);"
        "logging.getLogger().addHandler(h); [logging.warning('x') for _ in range(9)];"
        "print(h.dropped)",
        cwd=tmp_path,
    )
    assert out.split() == ["4"]
