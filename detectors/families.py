"""The detector families by name; light enough for the command line to import at start-up."""

DETECTORS = ("operations", "quality", "drift", "performance", "ab")
"""Each family runs as its own scheduled job per model."""
