"""disk-receiver: append every log line broadcast on the exchange to a JSON Lines file."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import structlog
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from logcast.consuming import Consumer
from logcast.log_record import encode_record
from logcast.metrics import Kind, Sample
from logcast.service_main import ServiceContext, run_service
from logcast.settings import ReceiverSettings
from logcast.wire_format import ReceivedLog
from logcast_disk_receiver.jsonl_file import FsyncPolicy, RotatingJsonlFile

SERVICE = "disk-receiver"


class DiskSettings(ReceiverSettings):
    """Append every message on the exchange to LOG_DIR/<instance>.jsonl, one JSON line each."""

    model_config = SettingsConfigDict(cli_prog_name=SERVICE)

    log_dir: Path = Field(Path("logs"), description="Existing directory for the .jsonl files")
    instance: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.\-]{1,100}$",
        description="File name stem, unique per replica; unset: <hostname>-<pid>",
    )
    fsync: FsyncPolicy = Field(
        FsyncPolicy.INTERVAL,
        description="fsync after every acked batch (always), every --fsync-interval (interval), "
        "or never",
    )
    fsync_interval: float = Field(1.0, gt=0, le=3600, description="Seconds between fsyncs")
    max_bytes: int = Field(
        100 * 1024 * 1024, ge=0, description="Rotate before a file would exceed this; 0: never"
    )
    backup_count: int = Field(5, ge=1, le=1000, description="Rotated files kept (.1 is newest)")


class DiskSink:
    def __init__(self, file: RotatingJsonlFile) -> None:
        self.file = file
        self._reopens_seen = 0

    def write(self, log: ReceivedLog) -> None:
        self.file.append(encode_record(log))

    def flush(self) -> None:
        self.file.flush()
        if self.file.reopened > self._reopens_seen:
            # logrotate's create mode (or an rm) took the file away; a new one is in its place.
            self._reopens_seen = self.file.reopened
            structlog.get_logger().info("disk.reopened", path=str(self.file.path))

    def tick(self) -> None:
        self.file.tick()


def instance_name(settings: DiskSettings) -> str:
    return settings.instance or f"{socket.gethostname()}-{os.getpid()}"


def receive(settings: DiskSettings, context: ServiceContext) -> None:
    file = RotatingJsonlFile(
        settings.log_dir / f"{instance_name(settings)}.jsonl",
        max_bytes=settings.max_bytes,
        backup_count=settings.backup_count,
        fsync=settings.fsync,
        fsync_interval=settings.fsync_interval,
    )
    context.metrics.add(
        lambda: [
            Sample("rotations", Kind.COUNTER, "Files rotated at --max-bytes", file.rotations),
            Sample("reopened", Kind.COUNTER, "Files reopened after logrotate", file.reopened),
        ]
    )
    try:
        Consumer(settings, context, DiskSink(file)).run()
    finally:
        file.close()


def main(argv: list[str] | None = None) -> int:
    return run_service(SERVICE, DiskSettings, argv, receive)


def run() -> None:
    sys.exit(main())
