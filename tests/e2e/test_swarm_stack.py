"""deploy/swarm/stack.yml on a single-node swarm that this test creates and always removes:
convergence, `docker service logs`, scale-out, and a killed broker task replaced and rejoined."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, run_docker
from tests.services import wait_for

STACK = "logcast"
SERVICES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3", "emitter", "screen-receiver", "disk-receiver")
VOLUMES = ("rabbitmq-data", "rabbitmq-2-data", "rabbitmq-3-data", "disk-logs")
K = 200
RUN_ID = uuid.uuid4().hex[:8]
NODES = ",".join(f"amqp://emitter@{host}:5672/%2F" for host in SERVICES[:3])
# The stand-in kernel has no IPVS: virtual IPs do not route (README, "Scale out").
ENV = os.environ | {"LOGCAST_SWARM_ENDPOINT_MODE": "dnsrr", "LOGCAST_DEMO_RATE": "5"}


def docker(*args: str, timeout: float = 120, check: bool = True, stdin: bytes | None = None) -> str:
    done = run_docker(["docker", *args], ENV, stdin, timeout, check)
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


def stack_containers(service: str = "", *extra: str) -> list[str]:
    label = f"com.docker.stack.namespace={STACK}"
    if service:
        label = f"com.docker.swarm.service.name={STACK}_{service}"
    return docker("ps", "-q", "--filter", f"label={label}", *extra).split()


def converged() -> bool:
    rows = docker("service", "ls", "--format", "{{.Name}} {{.Replicas}}").splitlines()
    replicas = dict(row.split(" ", 1) for row in rows)
    for service in SERVICES:
        running, _, wanted = replicas.get(f"{STACK}_{service}", "0/?").partition("/")
        if running != wanted.split(" ")[0]:
            return False
    return "(1/1 completed)" in replicas.get(f"{STACK}_cluster-init", "")


def tear_down(remove_gwbridge: bool) -> None:
    docker("stack", "rm", STACK, check=False)
    deadline = time.monotonic() + 90
    while stack_containers("", "-a") and time.monotonic() < deadline:
        time.sleep(2)
    docker("swarm", "leave", "--force", check=False)
    if remove_gwbridge:  # swarm init made it; leave does not remove it
        docker("network", "rm", "docker_gwbridge", check=False)
    for volume in VOLUMES:
        docker("volume", "rm", "-f", f"{STACK}_{volume}", check=False)


@pytest.fixture(scope="module")
def swarm() -> Iterator[None]:
    state = swarm_state()
    if state != "inactive":
        pytest.fail(
            f"this Docker engine is already in a swarm (state {state!r}); the swarm e2e only "
            "runs on a swarm it creates itself, so it leaves this one alone"
        )
    taken = [
        v for v in VOLUMES if docker("volume", "ls", "-q", "-f", f"name=^{STACK}_{v}$").strip()
    ]
    if taken:
        pytest.fail(
            f"volumes of an earlier '{STACK}' deployment exist ({', '.join(taken)}); "
            "the swarm e2e does not touch them"
        )
    had_gwbridge = bool(docker("network", "ls", "-q", "-f", "name=^docker_gwbridge$").strip())
    docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        node = docker("info", "--format", "{{.Swarm.NodeID}}").strip()
        for n in (1, 2, 3):
            docker("node", "update", "--label-add", f"logcast.rabbitmq-{n}=true", node)
        docker("compose", "build", timeout=900)  # the README's build step; swarm does not build
        docker("stack", "deploy", "-c", "deploy/swarm/stack.yml", "--resolve-image", "never", STACK)
        wait_for(converged, 300, "every service of the stack to converge", 3)
        yield
    finally:
        tear_down(remove_gwbridge=not had_gwbridge)
    assert swarm_state() == "inactive"


def emit(lines: list[str]) -> dict[str, int]:
    """A one-off emitter on the stack's attachable network, like `docker compose run`."""
    secret = ROOT / "deploy/dev-credentials/emitter.password"
    out = docker(
        "run", "--rm", "-i", "--network", f"{STACK}_logcast",
        "-v", f"{secret}:/run/secrets/logcast_amqp_password:ro",
        "-e", f"LOGCAST_AMQP_URL={NODES}", "-e", "LOGCAST_RETRY_TIMEOUT=60",
        "logcast/emitter:latest", "--stdin",
        stdin=("\n".join(lines) + "\n").encode(), timeout=120,
    )  # fmt: skip
    done = [json.loads(row) for row in out.splitlines() if '"emitter.done"' in row]
    assert done, out[-2000:]
    return {key: int(done[0][key]) for key in ("confirmed", "unroutable")}


def output(container: str) -> str:
    return docker("logs", container, timeout=60)


def every_replica_prints(replicas: list[str], lines: list[str], timeout: float) -> None:
    def done() -> bool:
        return all(all(line in output(c) for line in lines) for c in replicas)

    try:
        wait_for(done, timeout, "every line on every screen replica", 1)
    except AssertionError:
        counts = {c[:12]: sum(line in output(c) for line in lines) for c in replicas}
        raise AssertionError(f"lines printed per replica, of {len(lines)}: {counts}") from None


def all_bound(replicas: list[str], tag: str) -> None:
    """Probe lines until every replica prints one: then each has its queue bound."""
    for attempt in range(30):
        probe = f"info: probe-{tag}-{attempt}"
        emit([probe])
        if all(probe in output(c) for c in replicas):
            return
        time.sleep(2)
    raise AssertionError(f"not every screen replica consumed a probe line ({tag})")


def archived(tag: str) -> int:
    (archiver,) = stack_containers("disk-receiver")
    path = Path("/var/lib/logcast/logs.history.jsonl")
    got = docker("exec", archiver, "grep", "-c", f"e2e-{RUN_ID}-{tag}-", str(path), check=False)
    return int(got.split()[0]) if got.split() and got.split()[0].isdigit() else 0


def healthy(service: str, count: int, killed: str = "") -> list[str] | None:
    found = stack_containers(service, "--filter", "health=healthy")
    found = [c for c in found if c != killed]
    return found if len(found) == count else None


def running_nodes(container: str) -> int:
    status = docker(
        "exec", container, "rabbitmqctl", "-q", "cluster_status", "--formatter", "json",
        check=False, timeout=30,
    )  # fmt: skip
    try:
        return len(json.loads(status)["running_nodes"])
    except (ValueError, KeyError):
        return 0


def send_batch(tag: str) -> list[str]:
    lines = [f"warning: e2e-{RUN_ID}-{tag}-{i:04d}" for i in range(K)]
    assert emit(lines) == {"confirmed": K, "unroutable": 0}
    return lines


@pytest.mark.timeout(1200)  # the fixture builds, deploys and converges; cold that is minutes
@pytest.mark.usefixtures("swarm")
def test_stack_converges_scales_and_survives_a_killed_broker_task() -> None:
    # The demo emitter's lines show in the service's logs.
    wait_for(
        lambda: (
            docker("service", "logs", "--raw", f"{STACK}_screen-receiver").count("emitter:") >= 5
        ),
        60,
        "demo lines in `docker service logs logcast_screen-receiver`",
        2,
    )

    started = time.monotonic()
    docker("service", "scale", f"{STACK}_screen-receiver=3", timeout=300)
    replicas = wait_for(lambda: healthy("screen-receiver", 3), 120, "3 healthy screen replicas", 2)
    print(f"e2e swarm: scaled to 3 healthy replicas in {time.monotonic() - started:.0f}s")
    all_bound(replicas, "scaled")
    lines = send_batch("scaled")
    every_replica_prints(replicas, lines, 60)
    wait_for(lambda: archived("scaled") == K, 60, f"{K} scaled lines archived once", 1)

    # Kill node 1's task: swarm starts a new one, which rejoins the cluster.
    (old,) = stack_containers("rabbitmq")
    docker("kill", old)
    killed = time.monotonic()
    node1 = wait_for(
        lambda: healthy("rabbitmq", 1, old), 120, "a task replacing the killed one", 2
    )[0]
    wait_for(lambda: running_nodes(node1) == 3, 120, "the new node 1 to rejoin: 3 running", 3)
    print(
        f"e2e swarm: killed broker task replaced and rejoined in {time.monotonic() - killed:.0f}s"
    )

    # The services carry on: every replica, and the archiver, get every line of a new batch.
    replicas = stack_containers("screen-receiver")
    assert len(replicas) == 3
    all_bound(replicas, "after-kill")
    lines = send_batch("after-kill")
    every_replica_prints(replicas, lines, 60)
    wait_for(lambda: archived("after-kill") == K, 60, f"{K} lines archived once after the kill", 1)
    assert archived("scaled") == K
