"""Tutorial-style baselines: a BlockingConnection publish loop and auto_ack consumers.

python -m bench.raw_clients publish URL EXCHANGE INPUT_FILE     ("-": stdin, line by line)
python -m bench.raw_clients consume URL EXCHANGE COUNT OUT_FILE [--stamp]
    prints "ready" once bound; --stamp prefixes each line with its receive time (epoch ms)
"""

from __future__ import annotations

import sys
import time
from typing import BinaryIO

import pika


def publish(url: str, exchange: str, input_file: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout")
    lines: BinaryIO = sys.stdin.buffer if input_file == "-" else open(input_file, "rb")  # noqa: SIM115
    with lines:
        for line in lines:
            channel.basic_publish(exchange=exchange, routing_key="", body=line.rstrip(b"\n"))
    connection.close()


def consume(url: str, exchange: str, count: int, out_file: str, stamp: bool) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout")
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(exchange=exchange, queue=queue)
    received = 0
    with open(out_file, "wb") as out:

        def on_message(ch: object, method: object, properties: object, body: bytes) -> None:
            nonlocal received
            if stamp:
                out.write(b"%d %s\n" % (time.time_ns() // 1_000_000, body))
            else:
                out.write(body + b"\n")
            received += 1
            if received >= count:
                channel.stop_consuming()

        channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=True)
        print("ready", flush=True)
        channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "publish":
        publish(args[0], args[1], args[2])
    else:
        consume(args[0], args[1], int(args[2]), args[3], "--stamp" in args[4:])
