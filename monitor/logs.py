"""Logging for the daemons (sidecar, collect, serve, detect): one format, to stderr."""

from __future__ import annotations

import logging
import sys

# kafka-python logs every refused connection and every topic it has not seen yet at
# ERROR; modeltap reports what matters (a sink or a batch that failed) itself.
_QUIET = (
    "kafka.cluster",
    "kafka.net",
    "kafka.conn",
    "kafka.client",
    "kafka.producer.sender",
    "kafka.coordinator",
    "kafka.consumer.fetcher",
)


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once, at start-up."""
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)
