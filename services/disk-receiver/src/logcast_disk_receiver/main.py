"""disk-receiver: append every log line broadcast on the exchange to a JSON Lines file."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import structlog
from pydantic import AfterValidator, Field
from pydantic_settings import SettingsConfigDict

from logcast.consuming import Consumer
from logcast.history_stream import (
    HistoryCursor,
    check_resume_from,
    declare_arguments,
    history_queue,
    resume_start,
)
from logcast.log_record import encode_record
from logcast.metrics import Kind, Sample
from logcast.service_main import ServiceContext, run_service
from logcast.settings import ReceiverSettings
from logcast.wire_format import ReceivedLog
from logcast_disk_receiver.jsonl_file import FsyncPolicy, RotatingJsonlFile
from logcast_disk_receiver.resume_point import ResumePoint, read_resume_point

SERVICE = "disk-receiver"


class DiskSettings(ReceiverSettings):
    """Append every message on the exchange to LOG_DIR/<instance>.jsonl, one JSON line each."""

    model_config = SettingsConfigDict(cli_prog_name=SERVICE)

    log_dir: Path = Field(Path("logs"), description="Existing directory for the .jsonl files")
    instance: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.\-]{1,100}$",
        description="File name stem, unique per replica; unset: <hostname>-<pid>, or "
        "<exchange>.history with --resume",
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
    resume: bool = Field(
        False,
        description="Archive the history stream instead of a live queue, carrying on after the "
        "newest record on disk: across restarts every line is written once",
    )
    resume_from: Annotated[str, AfterValidator(check_resume_from)] = Field(
        "next",
        description="With --resume and nothing on disk yet: next (new lines only), first "
        "(all the stream holds) or an ISO time",
    )


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
    if settings.instance:
        return settings.instance
    if settings.resume:
        # Must survive a recreated container too, or the position on disk would be lost.
        return history_queue(settings.exchange)
    return f"{socket.gethostname()}-{os.getpid()}"


def resume_cursor(settings: DiskSettings, point: ResumePoint) -> HistoryCursor:
    """After the newest record on disk; with nothing there, where --resume-from says."""
    log = structlog.get_logger()
    if point.torn_bytes:
        log.warning("disk.torn_record_removed", bytes=point.torn_bytes)
    if point.unreadable:
        log.warning("disk.unreadable_lines", count=point.unreadable)
    cursor = HistoryCursor(
        queue=history_queue(settings.exchange),
        start="next",
        declare=declare_arguments(settings.history_max_age, settings.history_max_bytes),
    )
    if point.offset is not None:
        cursor.position = point.offset
        cursor.position_id = point.message_id
        log.info("resume.after", offset=point.offset, publishers=len(point.last_seq))
    else:
        cursor.start, cursor.since_ms = resume_start(settings.resume_from)
        log.info("resume.from", start=settings.resume_from)
    return cursor


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
        cursor = None
        point = ResumePoint()
        if settings.resume:
            point = read_resume_point(file.path, settings.backup_count)
            cursor = resume_cursor(settings, point)
        consumer = Consumer(settings, context, DiskSink(file), cursor=cursor)
        for publisher, seq in point.last_seq.items():
            consumer.tracker.resume_after(publisher, seq)
        consumer.run()
    finally:
        file.close()


def main(argv: list[str] | None = None) -> int:
    return run_service(SERVICE, DiskSettings, argv, receive)


def run() -> None:
    sys.exit(main())
