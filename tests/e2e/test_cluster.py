"""deploy/cluster/compose.yml: the stack on a 3-node cluster, through a killed node and a hung
(paused) one. Live receivers move within 15 s and count what they missed; the emitter confirms
everything; the history archive holds every line exactly once; the node rejoins."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.e2e.conftest import Compose, archived_texts
from tests.services import wait_for

FILES = ("docker-compose.yml", "deploy/cluster/compose.yml")
NODES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")
LINES = 5000
PACE = 250  # lines per second: the fault lands mid-stream
RESUME_BOUND = 15.0
PAUSE_SECONDS = 20  # longer than the 5 s silence bound plus the 10 s net_ticktime
RUN_ID = uuid.uuid4().hex[:8]
TOKEN = re.compile(rf"e2e-{RUN_ID}-[a-z]+-\d{{5}}")
METRICS = (
    "import urllib.request; "
    "print(urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=5).read().decode())"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Compose]:
    stack = Compose(f"logcast-cluster-{uuid.uuid4().hex[:8]}", FILES)
    # The overlay's own heartbeat (5 s) is what detects a hung node.
    stack.env.pop("LOGCAST_HEARTBEAT")
    stack.env |= {"LOGCAST_RESUME": "true", "LOGCAST_RESUME_FROM": "first"}
    try:
        yield stack
    finally:
        for node in NODES:  # a paused container cannot be removed
            stack.run("unpause", node, check=False, timeout=60)
        stack.run("down", "-v", "--remove-orphans", "--timeout", "15", check=False, timeout=240)


def events(container: str) -> list[dict[str, object]]:
    done = subprocess.run(
        ["docker", "logs", container], capture_output=True, text=True, check=False
    )
    return [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]


def printed(container: str) -> set[str]:
    done = subprocess.run(
        ["docker", "logs", container], capture_output=True, text=True, check=False
    )
    return {m.group() for m in map(TOKEN.search, done.stdout.splitlines()) if m}


def missed_total(container: str) -> int:
    done = subprocess.run(
        ["docker", "exec", container, "python", "-c", METRICS],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"^logcast_missed_total(?:\{[^}]*\})? ([\d.]+)$", done.stdout, re.M)
    assert found, done.stdout[-1000:]
    return int(float(found.group(1)))


def archived(container: str) -> list[str]:
    return [m.group() for m in map(TOKEN.search, archived_texts(container)) if m]


def running_nodes(cluster: Compose) -> int:
    for node in NODES:
        done = cluster.run(
            "exec", "-T", node, "rabbitmqctl", "-q", "cluster_status", "--formatter", "json",
            check=False, timeout=60,
        )  # fmt: skip
        if done.returncode == 0:
            return len(json.loads(done.stdout)["running_nodes"])
    return 0


def stream_in_sync(cluster: Compose) -> bool:
    done = cluster.run(
        "exec", "-T", "rabbitmq-2", "rabbitmq-streams", "-q", "stream_status", "logs.history",
        "--formatter", "json", check=False, timeout=60,
    )  # fmt: skip
    try:
        members = json.loads(done.stdout)
    except ValueError:
        return False
    offsets = {m.get("offset") for m in members}
    return len(members) == 3 and len(offsets) == 1 and None not in offsets


def stamp(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def moved_within(container: str, node: str, fault_at: float) -> float | None:
    """Seconds from the fault to the session that replaced one on ``node``; None if the
    service was not on that node when the fault came."""
    readies = [e for e in events(container) if e.get("event") == "ready"]
    before = [e for e in readies if stamp(e) <= fault_at]
    if not before or before[-1].get("node") != f"{node}:5672":
        return None
    after = [e for e in readies if stamp(e) > fault_at]
    assert after, f"{container[:12]} never resumed after losing {node}"
    return stamp(after[0]) - fault_at


def fault_mid_stream(cluster: Compose, kind: str) -> dict[str, float]:
    """Send LINES marked lines through `docker compose run -T emitter --stdin`; kill or pause
    the emitter's node mid-stream. Returns seconds to resume per affected service."""
    lines = [f"info: e2e-{RUN_ID}-{kind}-{i:05d}" for i in range(LINES)]
    emitter = cluster.emitter_on_stdin()
    assert emitter.stdin is not None and emitter.stderr is not None
    err: list[str] = []
    stderr = emitter.stderr
    reader = threading.Thread(target=lambda: err.extend(x.decode() for x in stderr), daemon=True)
    reader.start()

    def feed() -> None:
        assert emitter.stdin is not None
        step = PACE // 10
        for first in range(0, LINES, step):
            emitter.stdin.write("".join(f"{x}\n" for x in lines[first : first + step]).encode())
            emitter.stdin.flush()
            time.sleep(0.1)
        emitter.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    ready = wait_for(
        lambda: next((json.loads(x) for x in err if '"event": "ready"' in x), None),
        60,
        "the stdin emitter's first session",
        0.2,
    )
    node = str(ready["node"]).split(":")[0]
    time.sleep(3)
    (broker,) = cluster.container_ids(node)
    fault_at = time.time()
    if kind == "kill":
        cluster.run("kill", node)
    else:
        subprocess.run(["docker", "pause", broker], check=True, capture_output=True)
        # The node comes back after PAUSE_SECONDS, whether or not the emitter is done by then.
        unpause = threading.Timer(
            PAUSE_SECONDS, lambda: subprocess.run(["docker", "unpause", broker], check=False)
        )
        unpause.start()
    try:
        assert emitter.wait(300) == 0, "\n".join(err[-30:])
    finally:
        if kind == "pause":
            unpause.join()
    feeder.join(10)
    reader.join(10)
    done = next(json.loads(x) for x in err if '"emitter.done"' in x)
    assert done["confirmed"] == LINES and done["unroutable"] == 0, done
    readies = [json.loads(x) for x in err if '"event": "ready"' in x]
    resumed = {"emitter": stamp(readies[1]) - fault_at} if len(readies) > 1 else {}
    assert resumed, f"the emitter on {node} never opened a second session: {readies}"

    receivers = cluster.container_ids("screen-receiver")
    for container in receivers:
        took = moved_within(container, node, fault_at)
        if took is not None:
            resumed[f"screen-receiver {container[:12]}"] = took
    print(f"e2e cluster: {kind} {node}: resumed after {resumed}")
    assert all(took <= RESUME_BOUND for took in resumed.values()), resumed

    # Every live receiver printed each line once or counted it as missed (the demo emitter is
    # stopped, so every number belongs to this test's emitters).
    def accounted() -> bool:
        return all(len(printed(c)) + missed_total(c) == sent_so_far(kind) for c in receivers)

    try:
        wait_for(accounted, 60, "every line printed or counted as missed", 2)
    except AssertionError:
        report = {c[:12]: (len(printed(c)), missed_total(c)) for c in receivers}
        raise AssertionError(f"(printed, missed) of {sent_so_far(kind)}: {report}") from None

    # The archive holds every confirmed line exactly once.
    (archiver,) = cluster.container_ids("disk-receiver")
    wait_for(
        lambda: sum(f"-{kind}-" in t for t in archived(archiver)) >= LINES,
        120,
        f"{kind} archived",
        2,
    )
    time.sleep(2)
    texts = [t for t in archived(archiver) if f"-{kind}-" in t]
    assert sorted(texts) == sorted(x.split(" ", 1)[1] for x in lines), (len(texts), len(set(texts)))

    # The node comes back and rejoins.
    if kind == "kill":
        cluster.run("start", node)
    try:
        wait_for(lambda: running_nodes(cluster) == 3, 120, f"{node} rejoining", 3)
    except AssertionError:
        if kind != "pause":
            raise
        # After a long freeze autoheal may leave the node outside (README, "A 3-node cluster"):
        # the documented remedy is a restart of that node, and it must work.
        print(f"e2e cluster: {node} not back by itself 120 s after the pause; restarting it")
        cluster.run("restart", node, timeout=120)
        wait_for(lambda: running_nodes(cluster) == 3, 180, f"{node} rejoining after a restart", 3)
    # Losing a second node is safe only once the stream's replica there has caught up again.
    wait_for(lambda: stream_in_sync(cluster), 120, "logs.history in sync on 3 members", 2)
    return resumed


def sent_so_far(kind: str) -> int:
    return LINES * (1 if kind == "kill" else 2)


@pytest.mark.timeout(1200)
def test_cluster_survives_a_killed_and_a_hung_node(cluster: Compose) -> None:
    cluster.run("up", "-d", "--scale", "screen-receiver=2", "--scale", "emitter=0", timeout=300)
    wait_for(
        lambda: cluster.text("ps", "-a", "--format", "{{.Service}} {{.State}} {{.ExitCode}}")
        .count("cluster-init exited 0") == 1,
        240,
        "cluster-init to give the history stream 3 members",
        3,
    )  # fmt: skip
    assert running_nodes(cluster) == 3
    wait_for(lambda: stream_in_sync(cluster), 120, "logs.history in sync on 3 members", 2)
    for container in cluster.container_ids("screen-receiver") + cluster.container_ids(
        "disk-receiver"
    ):
        wait_for(
            lambda c=container: any(e.get("event") == "ready" for e in events(c)),
            120,
            "every receiver consuming",
            1,
        )
    fault_mid_stream(cluster, "kill")
    fault_mid_stream(cluster, "pause")
