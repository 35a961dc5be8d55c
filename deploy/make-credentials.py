#!/usr/bin/env python3
"""Generate one password per logcast service plus the broker definitions that grant least privilege.

    python3 deploy/make-credentials.py OUT_DIR [--exchange logs]
        [--history-max-age 24h] [--history-max-bytes 1073741824]

Writes OUT_DIR/{emitter,screen-receiver,disk-receiver,admin}.password, OUT_DIR/erlang.cookie (the
shared secret of a cluster's nodes, deploy/cluster) and OUT_DIR/definitions.json (salted SHA-256
hashes only, as RabbitMQ stores them). The definitions also declare the exchange,
the history stream <exchange>.history with its retention, and the binding between them, which the
broker restores at every boot. Standard library only, so it runs anywhere.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
from pathlib import Path

RECEIVERS = ("screen-receiver", "disk-receiver")


def rabbit_hash(password: str) -> str:
    """rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), 4-byte salt."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(
    passwords: dict[str, str], exchange: str, max_age: str, max_bytes: int
) -> dict[str, object]:
    ex = re.escape(exchange)
    history = f"{exchange}.history"
    own_queues = r"^amq\.gen-.*$"
    permissions = [
        # emitter: declare and publish to the exchange, and bind the history stream to it (a
        # bind needs write on the queue and read on the exchange); it cannot declare, delete,
        # purge or read the stream
        {
            "user": "emitter",
            "configure": f"^{ex}$",
            "write": rf"^({ex}|{ex}\.history)$",
            "read": f"^{ex}$",
        },
        *[
            # receivers: declare the exchange and their own server-named queues, bind, consume,
            # and read the history stream; no write on any exchange, so they cannot publish
            {
                "user": name,
                "configure": rf"^(amq\.gen-.*|{ex})$",
                "write": own_queues,
                "read": rf"^(amq\.gen-.*|{ex}|{ex}\.history)$",
            }
            for name in RECEIVERS
        ],
        {"user": "admin", "configure": ".*", "write": ".*", "read": ".*"},
    ]
    return {
        "users": [
            {
                "name": name,
                "password_hash": rabbit_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"] if name == "admin" else [],
                "limits": {},
            }
            for name, password in passwords.items()
        ],
        "vhosts": [{"name": "/"}],
        "permissions": [{"vhost": "/", **p} for p in permissions],
        **topology(exchange, history, max_age, max_bytes),
    }


def topology(exchange: str, history: str, max_age: str, max_bytes: int) -> dict[str, object]:
    """The transient exchange (as the tutorial declares it) and the durable history stream."""
    return {
        "exchanges": [
            {
                "name": exchange,
                "vhost": "/",
                "type": "fanout",
                "durable": False,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "queues": [
            {
                "name": history,
                "vhost": "/",
                "durable": True,
                "auto_delete": False,
                "arguments": {
                    "x-queue-type": "stream",
                    "x-max-age": max_age,
                    "x-max-length-bytes": max_bytes,
                },
            }
        ],
        "bindings": [
            {
                "source": exchange,
                "vhost": "/",
                "destination": history,
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {},
            }
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--exchange", default="logs")
    parser.add_argument("--history-max-age", default="24h", help="stream retention by age")
    parser.add_argument(
        "--history-max-bytes", type=int, default=1024**3, help="stream retention by size"
    )
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    passwords = {name: secrets.token_urlsafe(24) for name in ("emitter", *RECEIVERS, "admin")}
    for name, password in passwords.items():
        path = args.out_dir / f"{name}.password"
        path.write_text(password + "\n")
        # The services run as uid 10001 and read this through a compose secret (a bind mount).
        os.chmod(path, 0o644)
    cookie = args.out_dir / "erlang.cookie"
    cookie.write_text(secrets.token_hex(32))
    # Read through a compose secret by the broker's own user; the entrypoint copies it owner-only.
    os.chmod(cookie, 0o644)
    (args.out_dir / "definitions.json").write_text(
        json.dumps(
            definitions(passwords, args.exchange, args.history_max_age, args.history_max_bytes),
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {len(passwords)} passwords, erlang.cookie and definitions.json to {args.out_dir}")


if __name__ == "__main__":
    main()
