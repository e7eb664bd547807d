"""modeltap core: configuration, record schema, storage, errors and the ``monitor`` CLI."""

__version__ = "0.1.0"
