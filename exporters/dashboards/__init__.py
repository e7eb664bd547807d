"""Grafana dashboards built with grafana-foundation-sdk, and their provisioning files."""
