"""Exporters: Prometheus metrics, alert rules and Grafana dashboards from detector results."""
