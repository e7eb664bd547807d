"""The ``monitor`` command: the CLI, one module per command, ``serve``'s wiring, rendering of
results, and the demo. It composes the packages below it; nothing imports it but tests."""
