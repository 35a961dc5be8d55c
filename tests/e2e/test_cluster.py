"""The stack on a 3-node cluster (deploy/cluster/compose.yml): a node killed, then one hung.

Each fault lands on the node the sending emitter is on, while it sends marked lines through
``docker compose run -T emitter --stdin``. The emitter must exit 0; live receivers on that node
must consume from another node within 15 s; the archive (disk-receiver --resume) must hold
every line exactly once (in its own time: a history reader has no 15 s bound); the node must
rejoin afterwards.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Compose
from tests.e2e.test_compose_stack import archived_texts, inspect, logs_of
from tests.services import wait_for

FILES = ("docker-compose.yml", "deploy/cluster/compose.yml")
NODES = {
    "rabbitmq": "rabbit@rabbitmq",
    "rabbitmq-2": "rabbit@rabbitmq-2",
    "rabbitmq-3": "rabbit@rabbitmq-3",
}
LINES = 5000
PACE = 250  # lines per second: the fault lands mid-stream
FAILOVER_LIMIT = 15.0
RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Compose]:
    stack = Compose(f"logcast-cluster-{uuid.uuid4().hex[:8]}", FILES)
    stack.env |= {"LOGCAST_RESUME": "true", "LOGCAST_RESUME_FROM": "first"}
    # The overlay's own heartbeat (5 s), not the one the single-broker e2e sets for its frozen
    # receiver: a hung node is noticed only by silence.
    stack.env.pop("LOGCAST_HEARTBEAT", None)
    try:
        yield stack
    finally:
        for service in NODES:  # a paused container cannot be removed
            for cid in stack.container_ids(service):
                subprocess.run(["docker", "unpause", cid], capture_output=True, check=False)
        stack.run("down", "-v", "--remove-orphans", "--timeout", "15", check=False, timeout=180)


class Sender:
    """``docker compose run -T emitter --stdin``, paced, its stderr read as it comes."""

    def __init__(self, compose: Compose, lines: list[str]) -> None:
        self.proc = subprocess.Popen(
            compose.command("run", "--rm", "-T", "emitter", "--stdin"),
            cwd=ROOT,
            env=compose.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._feed, args=(lines,), daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()

    def _feed(self, lines: list[str]) -> None:
        assert self.proc.stdin is not None
        step = PACE // 10
        for first in range(0, len(lines), step):
            self.proc.stdin.write("".join(f"{x}\n" for x in lines[first : first + step]).encode())
            self.proc.stdin.flush()
            time.sleep(0.1)
        self.proc.stdin.close()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            if raw.startswith(b"{"):
                self.events.append(json.loads(raw))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == name]


def event_time(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


def running_nodes(compose: Compose) -> set[str]:
    done = compose.run(
        "exec",
        "-T",
        "rabbitmq-2",
        "rabbitmqctl",
        "-q",
        "cluster_status",
        "--formatter",
        "json",
        check=False,
    )
    if done.returncode != 0:
        return set()
    return set(json.loads(done.stdout)["running_nodes"])


def readies_after(container: str, moment: float) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in logs_of(container)
        if line.startswith("{")
        and '"event": "ready"' in line
        and event_time(json.loads(line)) > moment
    ]


def on_node(container: str, node: str) -> bool:
    """Was this receiver's latest session on ``node`` (host:port)?"""
    readies = [
        json.loads(x) for x in logs_of(container) if x.startswith("{") and '"event": "ready"' in x
    ]
    return bool(readies) and readies[-1]["node"] == node


def accounted(container: str, tag: str, publisher: str) -> tuple[int, int] | None:
    """(lines shown, lines reported missed) once they add up to all that was sent."""
    out = logs_of(container)
    shown = sum(1 for x in out if tag in x and not x.startswith("{"))
    missed = sum(
        event["count"]
        for event in (json.loads(x) for x in out if '"receiver.missed"' in x)
        if event["publisher"] == publisher
    )
    return (shown, missed) if shown + missed == LINES else None


def fault_while_sending(compose: Compose, fault: str, tag: str) -> list[str]:
    """Send LINES, ``docker <fault>`` the sender's node mid-stream; check failover and loss."""
    lines = [f"info: {tag}-{i:05d}" for i in range(LINES)]
    sender = Sender(compose, lines)
    first = wait_for(lambda: sender.named("ready"), 60, "the sender ready")[0]
    node = str(first["node"])  # host:port
    service = node.partition(":")[0]
    (victim,) = compose.container_ids(service)
    # The live receivers on that node must be back within 15 s; the archiver (a history reader)
    # must only end up with every line, which the caller checks.
    hit = [cid for cid in compose.container_ids("screen-receiver") if on_node(cid, node)]
    time.sleep(3)  # mid-stream
    failed_at = time.time()
    subprocess.run(["docker", fault, victim], check=True, capture_output=True)
    try:
        try:
            second = wait_for(lambda: sender.named("ready")[1:], 60, "the sender elsewhere")[0]
        except AssertionError:
            runs = subprocess.run(
                ["docker", "ps", "-q", "--filter", f"name={compose.project}-emitter-run"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            for run in runs:
                print("\n".join(logs_of(run)[-15:]))
            raise
        emitter_seconds = event_time(second) - failed_at
        assert second["node"] != node
        receiver_seconds = []
        for cid in hit:
            try:
                ready = wait_for(lambda c=cid: readies_after(c, failed_at), 60, "a receiver")[0]
            except AssertionError:
                print("\n".join(x[:300] for x in logs_of(cid) if x.startswith("{"))[-6000:])
                raise
            assert ready["node"] != node
            receiver_seconds.append(round(event_time(ready) - failed_at, 1))
        assert sender.proc.wait(300) == 0, sender.events[-5:]
        done = sender.named("emitter.done")[0]
        assert done["confirmed"] == LINES and done["unconfirmed"] == 0, done
        for cid in hit:
            printed, missed = wait_for(
                lambda c=cid: accounted(c, tag, str(first["publisher"])),
                60,
                "a live receiver on the failed node to show or count every line",
            )
            print(f"e2e cluster: live receiver on {service}: {printed} shown, {missed} missed")
        print(
            f"e2e cluster: {fault} {service}: emitter publishing again after "
            f"{emitter_seconds:.1f} s, receivers on it consuming again after {receiver_seconds} s"
        )
        assert emitter_seconds < FAILOVER_LIMIT
        assert all(s < FAILOVER_LIMIT for s in receiver_seconds)
    finally:
        if fault == "pause":
            subprocess.run(["docker", "unpause", victim], check=False, capture_output=True)
        else:
            compose.run("start", service)
    back_at = time.time()
    try:
        wait_for(lambda: running_nodes(compose) == set(NODES.values()), 60, "3 nodes", 2)
    except AssertionError:
        # autoheal did not bring a node back that was frozen for half a minute or more (seen
        # on 4.0.5): restarting it, as an operator would, must.
        print(f"e2e cluster: {service} not back 60 s after {fault}: restarting it")
        subprocess.run(["docker", "restart", victim], check=True, capture_output=True)
        wait_for(lambda: running_nodes(compose) == set(NODES.values()), 180, "3 nodes", 2)
    print(f"e2e cluster: {service} rejoined, 3 running nodes {time.time() - back_at:.0f} s later")
    return lines


@pytest.mark.e2e
@pytest.mark.timeout(1500)
def test_cluster_survives_a_killed_and_a_hung_node(cluster: Compose) -> None:
    cluster.run("build", timeout=900)
    started = time.monotonic()
    cluster.run("up", "-d", "--scale", "screen-receiver=3", timeout=300)
    wait_for(lambda: running_nodes(cluster) == set(NODES.values()), 180, "the cluster", 2)
    init = wait_for(
        lambda: (
            (ids := cluster.text("ps", "-a", "-q", "cluster-init").split())
            and inspect(ids[0], "{{.State.Status}}") == "exited"
            and ids[0]
        ),
        180,
        "cluster-init to finish",
        2,
    )
    assert inspect(init, "{{.State.ExitCode}}") == "0", logs_of(init)
    assert "logs.history has 3 members" in "\n".join(logs_of(init))
    print(f"e2e cluster: 3 nodes and a 3-replica stream in {time.monotonic() - started:.0f} s")

    sent = fault_while_sending(cluster, "kill", f"kill-{RUN_ID}")
    sent += fault_while_sending(cluster, "pause", f"pause-{RUN_ID}")

    (archiver,) = cluster.container_ids("disk-receiver")

    def archived() -> Counter[str] | None:
        counts = Counter(t for t in archived_texts(archiver) if RUN_ID in t)
        return counts if sum(counts.values()) >= len(sent) else None

    counts = wait_for(archived, 300, "every line archived", 2)
    time.sleep(2)
    counts = Counter(t for t in archived_texts(archiver) if RUN_ID in t)
    assert set(counts) == set(sent) and max(counts.values()) == 1, (
        len(counts),
        sum(counts.values()),
    )
    missed = [
        json.loads(x)
        for cid in cluster.container_ids("screen-receiver")
        for x in logs_of(cid)
        if '"receiver.missed"' in x
    ]
    print(f"e2e cluster: archive exact; screen receivers reported {len(missed)} missed ranges")
