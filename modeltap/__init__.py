"""modeltap's core: errors, configuration, units, the record schema, events, labels, the store.

Everything else stands on it: ``collector/`` (capture and transport), ``detectors/``
(statistics and the runner), ``exporters/`` (Prometheus, rules, dashboards) and, on top,
``monitor/`` (the command line). It imports none of them.
"""

__version__ = "0.1.0"
