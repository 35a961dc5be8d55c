"""logcast emitter service."""
