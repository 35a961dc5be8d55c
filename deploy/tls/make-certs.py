#!/usr/bin/env python3
"""Development certificates for logcast over TLS: a CA, the broker's certificate, and one client
certificate per service (its CN is the RabbitMQ user under --auth external).

    python3 deploy/tls/make-certs.py OUT_DIR [--broker-name rabbitmq] [--extra-name localhost]
                                     [--chown-keys [--broker-uid 999]]

Writes ca.pem, broker.pem, broker.key and <service>.pem / <service>.key into OUT_DIR (keys 0600,
yours). Compose bind-mounts secrets with their host owner and mode, so for the containers
--chown-keys (as root) gives each key to the user that reads it: uid 10001 for the services, the
broker image's rabbitmq user for broker.key (999 in the official image); they stay 0400.
Needs the openssl command. For production, use certificates from your own CA instead (README, TLS).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SERVICES = ("emitter", "screen-receiver", "disk-receiver")
SERVICE_UID = 10001  # the USER of the services' images
DAYS = "825"


def openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"make-certs: error: openssl {args[0]} failed: {done.stderr.strip()}")


def san(names: list[str]) -> str:
    entries = []
    for name in names:
        try:
            ipaddress.ip_address(name)
            entries.append(f"IP:{name}")
        except ValueError:
            entries.append(f"DNS:{name}")
    return ",".join(entries)


def issue(out: Path, name: str, cn: str, usage: str, alt_names: list[str] | None = None) -> None:
    key, cert = out / f"{name}.key", out / f"{name}.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    key.chmod(0o600)
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        lines = [f"extendedKeyUsage={usage}", "basicConstraints=critical,CA:FALSE"]
        if alt_names:
            lines.append(f"subjectAltName={san(alt_names)}")
        ext.write_text("\n".join(lines) + "\n")
        openssl("req", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-out", str(csr))
        openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(out / "ca.pem"),
            "-CAkey", str(out / "ca.key"), "-CAcreateserial", "-days", DAYS,
            "-extfile", str(ext), "-out", str(cert),
        )  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make-certs.py", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--broker-name", default="rabbitmq", help="the broker's hostname")
    parser.add_argument(
        "--extra-name", action="append", default=[], help="another name or IP for the broker"
    )
    parser.add_argument(
        "--chown-keys", action="store_true", help="give each key to its container's user (root)"
    )
    parser.add_argument(
        "--broker-uid", type=int, default=999, help="the broker image's rabbitmq uid (default 999)"
    )
    args = parser.parse_args(argv)
    if args.chown_keys and os.geteuid() != 0:
        parser.error("--chown-keys changes the keys' owners, so it needs root (try sudo)")
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(out / "ca.key"))  # fmt: skip
    (out / "ca.key").chmod(0o600)
    openssl(
        "req", "-x509", "-new", "-key", str(out / "ca.key"), "-subj", "/CN=logcast development CA",
        "-days", DAYS, "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(out / "ca.pem"),
    )  # fmt: skip
    issue(out, "broker", args.broker_name, "serverAuth", [args.broker_name, *args.extra_name])
    for service in SERVICES:
        issue(out, service, service, "clientAuth")
    (out / "ca.srl").unlink(missing_ok=True)
    if args.chown_keys:
        owners = {"broker": args.broker_uid} | dict.fromkeys(SERVICES, SERVICE_UID)
        for name, uid in owners.items():
            os.chown(out / f"{name}.key", uid, uid)
            (out / f"{name}.key").chmod(0o400)
    print(f"make-certs: CA, broker ({args.broker_name}) and {len(SERVICES)} client certificates "
          f"in {out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
