"""The detector families, one module each: its figures over one window, and the result rows
they become (a ``results`` function). Which families exist is ``modeltap.schema.FAMILIES``."""
