"""Capture: the sidecar proxy, log tail, payload adapters, sinks, spool and Kafka transport."""
