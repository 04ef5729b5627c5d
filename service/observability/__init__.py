"""Structured logs and Prometheus metrics, for every process."""
