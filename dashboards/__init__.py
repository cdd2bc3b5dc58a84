"""Grafana dashboards as code: built with the Grafana Foundation SDK, provisioned or deployed."""
