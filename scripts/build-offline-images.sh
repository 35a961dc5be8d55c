#!/usr/bin/env bash
# Build stand-in base images from Debian packages, for machines that cannot reach a registry:
#   local/debian:{bookworm,trixie}  (debootstrap --variant=minbase)
#   local/python:3.13   (trixie's python3; replaces python:3.12-slim)   local/python:3.11 (bookworm)
#   local/rabbitmq:4.0  (trixie's rabbitmq-server 4.0.5; replaces rabbitmq:4-management)
#   local/rabbitmq:3.10 (bookworm's 3.10, the version of the host broker)
# None of the RabbitMQ images carries an Erlang cookie (see offline-images/rabbitmq.Dockerfile).
# Prints the variables that point docker-compose.yml and the tests at the default pair,
# RabbitMQ 4.0 and Python 3.13 (LOGCAST_OFFLINE_SUITE=bookworm: 3.10 and 3.11):
#   eval "$(scripts/build-offline-images.sh)"
# Progress goes to stderr. Needs root, docker and debootstrap (.ci/install-docker.sh installs them).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${WORK:-/var/tmp/logcast-offline-images}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$WORK"
log() { echo "[offline-images] $*" >&2; }

debian_base() {  # suite
  local suite="$1" root="$WORK/rootfs-$1"
  if [ -z "${FORCE:-}" ] && docker image inspect "local/debian:$suite" >/dev/null 2>&1; then
    return
  fi
  rm -rf "$root"
  log "debootstrap $suite (about 35 s)"
  debootstrap --variant=minbase "$suite" "$root" "$MIRROR" >"$WORK/debootstrap-$suite.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap-$suite.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  : >"$root/etc/resolv.conf"
  # Keep package postinst scripts from starting services inside image builds.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$root/etc/apt/apt.conf.d/90norecommends"
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s-security %s-security main\n' \
    "$MIRROR" "$suite" "$MIRROR" "$suite" "$MIRROR" "$suite" >"$root/etc/apt/sources.list"
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "local/debian:$suite" >/dev/null
  rm -rf "$root"
}

python_image() {  # suite tag
  log "local/python:$2"
  local ctx="$WORK/python-context"
  rm -rf "$ctx" && mkdir -p "$ctx/certs"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/certs/" 2>/dev/null || true
  docker build -q --build-arg "SUITE=$1" -t "local/python:$2" \
    -f "$HERE/offline-images/python.Dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
}

rabbitmq_image() {  # suite tag
  log "local/rabbitmq:$2"
  docker build -q --build-arg "SUITE=$1" -t "local/rabbitmq:$2" \
    -f "$HERE/offline-images/rabbitmq.Dockerfile" "$HERE/offline-images" >/dev/null
}

# docker build runs every time: its layer cache makes it quick, and a changed Dockerfile counts.
debian_base bookworm
debian_base trixie
python_image trixie 3.13
rabbitmq_image trixie 4.0
python_image bookworm 3.11
rabbitmq_image bookworm 3.10

if [ "${LOGCAST_OFFLINE_SUITE:-trixie}" = bookworm ]; then
  echo "export PYTHON_IMAGE=local/python:3.11"
  echo "export RABBITMQ_IMAGE=local/rabbitmq:3.10"
else
  echo "export PYTHON_IMAGE=local/python:3.13"
  echo "export RABBITMQ_IMAGE=local/rabbitmq:4.0"
fi
