"""The deployment as users run it: images, scaled stack, broker restart, least privilege, stop."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import QUEUE_MAX_BYTES, Compose, archived_texts
from tests.services import wait_for

K = 200
STUCK_LINES = 200_000
HISTORY_LINES = 5000
HISTORY_PACE = 250  # lines per second: the broker restart lands mid-stream
SCALE = ["--scale", "screen-receiver=2", "--scale", "disk-receiver=2"]
RUN_ID = uuid.uuid4().hex[:8]

PROBE = r"""
import json, pika, pika.exceptions, sys
password = open("/run/secrets/logcast_amqp_password").read().strip()
user = sys.argv[1]

def connect(u, p):
    return pika.BlockingConnection(pika.URLParameters(f"amqp://{u}:{p}@rabbitmq:5672/%2F"))

def code(action):
    try:
        action()
        return "allowed"
    except pika.exceptions.ChannelClosedByBroker as error:
        return error.reply_code
    except pika.exceptions.AMQPConnectionError as error:
        return type(error).__name__

conn = connect(user, password)
results = {
    "declare_queue": code(lambda: conn.channel().queue_declare("", exclusive=True)),
    "consume": code(lambda: conn.channel().basic_get("amq.gen-not-mine")),
    "publish_logs": code(lambda: (lambda ch: (ch.confirm_delivery(),
        ch.basic_publish("logs", "", f"probe from {user}".encode())))(conn.channel())),
    "guest_login": code(lambda: connect("guest", "guest")),
    "consume_history": code(lambda: (lambda ch: (ch.basic_qos(prefetch_count=1),
        ch.basic_consume("logs.history", lambda *a: None)))(conn.channel())),
    "bind_history": code(lambda: conn.channel().queue_bind("logs.history", "logs")),
    "delete_history": code(lambda: conn.channel().queue_delete("logs.history")),
}
print(json.dumps(results))
"""


def inspect(container: str, template: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", template, container], capture_output=True, text=True, check=True
    ).stdout.strip()


def all_healthy(compose: Compose) -> bool:
    ids = [
        cid
        for service in ("rabbitmq", "emitter", "screen-receiver", "disk-receiver")
        for cid in compose.container_ids(service)
    ]
    return len(ids) == 6 and all(
        inspect(cid, "{{.State.Health.Status}}") == "healthy" for cid in ids
    )


def send_batch(compose: Compose, tag: str) -> list[str]:
    lines = [f"warning: e2e-{RUN_ID}-{tag}-{i:04d}" for i in range(K)]
    done = compose.run(
        "run",
        "--rm",
        "-T",
        "emitter",
        "--stdin",
        input_bytes=("\n".join(lines) + "\n").encode(),
        timeout=120,
    )
    summary = [
        json.loads(line)
        for line in done.stderr.decode().splitlines()
        if line.startswith("{") and '"emitter.done"' in line
    ]
    assert summary, done.stderr.decode()
    assert summary[0]["confirmed"] == K
    assert summary[0]["unroutable"] == 0
    return lines


def logs_of(container: str) -> list[str]:
    """A container's output, stdout (the product) and stderr (diagnostics) together."""
    done = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=True)
    return done.stdout.splitlines() + done.stderr.splitlines()


def stuck_receiver_counts_what_it_missed(compose: Compose) -> None:
    """Freeze one screen replica (SIGSTOP) while STUCK_LINES go out: its queue stays within
    its byte bound, and after SIGCONT its missed count equals what it never printed."""
    stuck, healthy = compose.container_ids("screen-receiver")
    tag = f"stuck-{RUN_ID}"
    emitter = compose.emitter_on_stdin()
    assert emitter.stdin is not None
    # A few lines first, so that the receiver knows this publisher before it loses anything.
    head = [f"info: {tag}-head-{i}" for i in range(10)]
    emitter.stdin.write(("\n".join(head) + "\n").encode())
    emitter.stdin.flush()
    wait_for(
        lambda: all(head[-1] in "\n".join(logs_of(c)) for c in (stuck, healthy)),
        60,
        "head lines on both screen replicas",
        1,
    )
    subprocess.run(["docker", "kill", "--signal", "STOP", stuck], check=True, capture_output=True)
    try:
        body = "".join(f"info: {tag}-{i:06d}\n" for i in range(STUCK_LINES))
        emitter.stdin.write(body.encode())
        emitter.stdin.close()

        def ready_bytes() -> list[int]:
            rows = compose.text(
                "exec",
                "-T",
                "rabbitmq",
                "rabbitmqctl",
                "-q",
                "list_queues",
                "name",
                "message_bytes_ready",
            ).splitlines()
            return [int(row.split("\t")[1]) for row in rows if row.startswith("amq.gen-")]

        # Sampled while the lines flow: the frozen queue fills up to its bound, never past it.
        seen: list[int] = []

        def full() -> bool:
            seen.extend(ready_bytes())
            return max(seen) > 0.9 * QUEUE_MAX_BYTES

        wait_for(full, 240, "the frozen queue to reach its bound", 2)
        assert emitter.wait(300) == 0
        final = f"{tag}-{STUCK_LINES - 1:06d}"
        wait_for(lambda: final in "\n".join(logs_of(healthy)), 180, "healthy got all", 1)
        seen.extend(ready_bytes())
        print(f"e2e: frozen queue ready bytes, largest seen {max(seen)}")
        assert max(seen) <= QUEUE_MAX_BYTES, seen
    finally:
        subprocess.run(["docker", "kill", "--signal", "CONT", stuck], check=False)

    errors = emitter.stderr.read().decode() if emitter.stderr else ""
    publisher = next(
        json.loads(line)["publisher"] for line in errors.splitlines() if '"event": "ready"' in line
    )
    last = f"{tag}-{STUCK_LINES - 1:06d}"

    def settled() -> tuple[int, int] | None:
        lines = logs_of(stuck)
        printed = sum(1 for line in lines if f"{tag}-" in line and not line.startswith("{"))
        gaps = [json.loads(line) for line in lines if '"receiver.missed"' in line]
        missed = sum(gap["count"] for gap in gaps if gap["publisher"] == publisher)
        finished = any(last in line for line in lines)
        return (printed, missed) if finished and printed + missed == 10 + STUCK_LINES else None

    printed, missed = wait_for(settled, 60, "the stuck replica to print and count the rest", 1)
    print(f"e2e: stuck replica printed {printed}, counted {missed} missed")
    assert missed > STUCK_LINES // 2  # the bound really dropped lines


def screen_lines_by_replica(compose: Compose) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for line in compose.text("logs", "--no-color", "screen-receiver").splitlines():
        prefix, _, rest = line.partition("|")
        out.setdefault(prefix.strip(), []).append(rest)
    return {replica: "\n".join(lines) for replica, lines in out.items()}


def disk_files(compose: Compose) -> dict[str, str]:
    """Every .jsonl file in the shared volume, read through the first disk replica."""
    first = compose.container_ids("disk-receiver")[0]
    listing = subprocess.run(
        [
            "docker",
            "exec",
            first,
            "sh",
            "-c",
            'for f in /var/lib/logcast/*.jsonl; do echo "== $f"; cat "$f"; done',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files: dict[str, list[str]] = {}
    current = ""
    for line in listing.splitlines():
        if line.startswith("== "):
            current = line[3:]
            files[current] = []
        else:
            files[current].append(line)
    return {name: "\n".join(lines) for name, lines in files.items()}


def delivered_everywhere(compose: Compose, lines: list[str]) -> bool:
    screens = screen_lines_by_replica(compose)
    files = disk_files(compose)
    texts = [set() for _ in files]
    for index, content in enumerate(files.values()):
        texts[index] = {json.loads(row)["text"] for row in content.splitlines() if row}
    return (
        len(screens) == 2
        and all(all(x in out for x in lines) for out in screens.values())
        and len(files) == 2
        and all(set(lines) <= found for found in texts)
    )


def paced_emitter(
    compose: Compose, lines: list[str], hold: threading.Event
) -> subprocess.Popen[bytes]:
    """``docker compose run -T emitter --stdin``, fed HISTORY_PACE lines a second from a thread;
    halfway it waits for ``hold`` (so a fault lands mid-stream however slow the machine is)."""
    emitter = compose.emitter_on_stdin()

    def feed() -> None:
        assert emitter.stdin is not None
        step = HISTORY_PACE // 10
        for first in range(0, len(lines), step):
            if first >= len(lines) // 2:
                hold.wait(300)
            emitter.stdin.write("".join(f"{x}\n" for x in lines[first : first + step]).encode())
            emitter.stdin.flush()
            time.sleep(0.1)
        emitter.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    return emitter


def history_survives_a_broker_restart(compose: Compose) -> None:
    """LOGCAST_RESUME=true: the disk receiver archives the history stream. A broker restart
    mid-stream loses nothing there; --since replays exactly the window, then follows."""
    compose.env["LOGCAST_RESUME"] = "true"
    compose.env["LOGCAST_RESUME_FROM"] = "first"
    compose.run("up", "-d", "--scale", "screen-receiver=2", "--scale", "disk-receiver=1")
    (archiver,) = compose.container_ids("disk-receiver")
    wait_for(
        lambda: any('"event": "ready"' in x and "logs.history" in x for x in logs_of(archiver)),
        120,
        "the archiver consuming the stream",
        1,
    )
    since = datetime.now(UTC).isoformat()
    tag = f"history-{RUN_ID}"
    lines = [f"info: {tag}-{i:05d}" for i in range(HISTORY_LINES)]
    hold = threading.Event()
    emitter = paced_emitter(compose, lines, hold)
    wait_for(
        lambda: sum(tag in t for t in archived_texts(archiver)) >= HISTORY_LINES // 10,
        60,
        "a tenth of the history lines archived",
        1,
    )
    try:
        compose.run("restart", "rabbitmq", timeout=120)
    finally:
        hold.set()
    assert emitter.wait(300) == 0, emitter.stderr.read() if emitter.stderr else ""
    errors = emitter.stderr.read().decode() if emitter.stderr else ""
    done = next(json.loads(x) for x in errors.splitlines() if '"emitter.done"' in x)
    assert done["confirmed"] == HISTORY_LINES and done["unroutable"] == 0, done
    readies = [json.loads(x) for x in errors.splitlines() if '"event": "ready"' in x]
    # Two sessions: the restart landed while it was sending.
    assert len(readies) >= 2 and all(r["history"] == "bound" for r in readies), readies

    def all_archived() -> list[str] | None:
        texts = [t for t in archived_texts(archiver) if tag in t]
        return texts if len(texts) >= HISTORY_LINES else None

    wait_for(all_archived, 120, "every history line archived", 2)
    time.sleep(2)
    texts = [t for t in archived_texts(archiver) if tag in t]
    assert sorted(texts) == sorted(lines), (len(texts), len(set(texts)))
    print(f"e2e: archive holds {len(texts)} of {HISTORY_LINES} lines across a broker restart")

    replay = f"logcast-e2e-since-{RUN_ID}"
    compose.run(
        "run", "-d", "--name", replay, "screen-receiver", "--since", since, "--color", "never"
    )
    token = re.compile(rf"{tag}-\d{{5}}")

    def replayed() -> list[str] | None:
        out = subprocess.run(
            ["docker", "logs", replay], capture_output=True, text=True, check=False
        ).stdout
        shown = [m.group() for m in map(token.search, out.splitlines()) if m]
        return shown if len(shown) >= HISTORY_LINES else None

    try:
        wait_for(replayed, 120, "--since replaying the window", 2)
        time.sleep(1)
        assert replayed() == [f"{tag}-{i:05d}" for i in range(HISTORY_LINES)]
    finally:
        subprocess.run(["docker", "rm", "-f", replay], capture_output=True, check=False)


@pytest.mark.e2e
@pytest.mark.timeout(1500)
def test_stack_end_to_end(compose: Compose) -> None:
    # 1. valid config, images build
    compose.run("config", "--quiet")
    started = time.monotonic()
    compose.run("build", timeout=900)
    build_seconds = time.monotonic() - started

    # 2. scaled stack comes up healthy
    compose.run("up", "-d", *SCALE, timeout=300)
    wait_for(lambda: all_healthy(compose), 180, "every container healthy", interval=2)
    up_seconds = time.monotonic() - started
    print(f"e2e: build {build_seconds:.0f}s, build+up+healthy {up_seconds:.0f}s")
    # Our config, definitions and topology use no deprecated broker feature (4.x warns at boot).
    broker_log = compose.text("logs", "--no-color", "rabbitmq")
    assert not [x for x in broker_log.splitlines() if "deprecat" in x.lower()], broker_log[-3000:]

    # 3. a batch reaches every replica; each disk replica has its own file
    first = send_batch(compose, "first")
    wait_for(lambda: delivered_everywhere(compose, first), 60, "first batch everywhere", 1)
    disk_ids = compose.container_ids("disk-receiver")
    hostnames = {inspect(cid, "{{.Config.Hostname}}") for cid in disk_ids}
    assert {name.rsplit("/", 1)[1] for name in disk_files(compose)} == {
        f"{host}-1.jsonl" for host in hostnames
    }

    # 4. broker restart: receivers reconnect by themselves, the next batch arrives everywhere
    receivers = compose.container_ids("screen-receiver") + disk_ids
    started_at = {cid: inspect(cid, "{{.State.StartedAt}}") for cid in receivers}
    compose.run("restart", "rabbitmq", timeout=120)

    def rebound() -> bool:
        logs = compose.text("logs", "--no-color", "screen-receiver", "disk-receiver")
        per_replica: dict[str, int] = {}
        for line in logs.splitlines():
            if '"event": "ready"' in line:
                replica = line.partition("|")[0].strip()
                per_replica[replica] = per_replica.get(replica, 0) + 1
        return len(per_replica) == 4 and all(n >= 2 for n in per_replica.values())

    wait_for(rebound, 120, "every receiver rebound after the broker restart", interval=1)
    assert {cid: inspect(cid, "{{.State.StartedAt}}") for cid in receivers} == started_at
    second = send_batch(compose, "second")
    wait_for(lambda: delivered_everywhere(compose, second), 60, "second batch everywhere", 1)

    # 5. a stuck receiver: its bounded queue drops its oldest lines, it counts them exactly
    stuck_receiver_counts_what_it_missed(compose)

    # 6. the history stream: a zero-loss archive across a broker restart, and --since
    history_survives_a_broker_restart(compose)

    # 7. least privilege, probed from inside the network with each service's own secret
    emitter_probe = json.loads(
        compose.text(
            "run", "--rm", "-T", "--entrypoint", "python", "emitter", "-c", PROBE, "emitter"
        )
    )
    assert emitter_probe["declare_queue"] == 403
    assert emitter_probe["consume"] == 403
    assert emitter_probe["guest_login"] in ("ProbableAuthenticationError", "AuthenticationError")
    assert emitter_probe["bind_history"] == "allowed"
    assert emitter_probe["consume_history"] == 403
    assert emitter_probe["delete_history"] == 403
    receiver_probe = json.loads(
        compose.text(
            "run",
            "--rm",
            "-T",
            "--entrypoint",
            "python",
            "screen-receiver",
            "-c",
            PROBE,
            "screen-receiver",
        )
    )
    assert receiver_probe["publish_logs"] == 403
    assert receiver_probe["declare_queue"] == "allowed"
    assert receiver_probe["consume_history"] == "allowed"
    assert receiver_probe["bind_history"] == 403
    assert receiver_probe["delete_history"] == 403
    assert "probe from screen-receiver" not in compose.text("logs", "screen-receiver")

    # 8. stop: every service exits 0 within its grace period
    services = [
        cid
        for name in ("emitter", "screen-receiver", "disk-receiver")
        for cid in compose.container_ids(name)
    ]
    started = time.monotonic()
    compose.run("stop", "emitter", "screen-receiver", "disk-receiver", timeout=60)
    stop_seconds = time.monotonic() - started
    assert stop_seconds < 10
    assert {cid: inspect(cid, "{{.State.ExitCode}}") for cid in services} == {
        cid: "0" for cid in services
    }
