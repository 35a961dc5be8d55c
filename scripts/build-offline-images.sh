#!/usr/bin/env bash
# Build stand-in base images from Debian packages, for machines that cannot reach a registry:
#   local/debian:bookworm  (debootstrap --variant=minbase)
#   local/python:3.11      (Debian's python3; replaces python:3.12-slim)
#   local/rabbitmq:3.10    (Debian's rabbitmq-server + management; replaces rabbitmq:4-management)
# Prints the variables that point docker-compose.yml and the tests at them:
#   eval "$(scripts/build-offline-images.sh)"
# Progress goes to stderr. Needs root, docker and debootstrap (.ci/install-docker.sh installs them).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${WORK:-/var/tmp/logcast-offline-images}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$WORK"
log() { echo "[offline-images] $*" >&2; }

if [ -n "${FORCE:-}" ] || ! docker image inspect local/debian:bookworm >/dev/null 2>&1; then
  root="$WORK/rootfs"
  rm -rf "$root"
  log "debootstrap bookworm (about 30 s)"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  : >"$root/etc/resolv.conf"
  # Keep package postinst scripts from starting services inside image builds.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$root/etc/apt/apt.conf.d/90norecommends"
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$MIRROR" "$MIRROR" "$MIRROR" >"$root/etc/apt/sources.list"
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - local/debian:bookworm >/dev/null
  rm -rf "$root"
fi

if [ -n "${FORCE:-}" ] || ! docker image inspect local/python:3.11 >/dev/null 2>&1; then
  log "local/python:3.11"
  ctx="$WORK/python-context"
  rm -rf "$ctx" && mkdir -p "$ctx/certs"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/certs/" 2>/dev/null || true
  docker build -q -t local/python:3.11 -f "$HERE/offline-images/python.Dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
fi

if [ -n "${FORCE:-}" ] || ! docker image inspect local/rabbitmq:3.10 >/dev/null 2>&1; then
  log "local/rabbitmq:3.10"
  docker build -q -t local/rabbitmq:3.10 -f "$HERE/offline-images/rabbitmq.Dockerfile" \
    "$HERE/offline-images" >/dev/null
fi

echo "export PYTHON_IMAGE=local/python:3.11"
echo "export RABBITMQ_IMAGE=local/rabbitmq:3.10"
