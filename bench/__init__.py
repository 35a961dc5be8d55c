"""Benchmarks: logcast's services against tutorial-style raw pika clients, same broker, same run."""
