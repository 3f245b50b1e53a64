"""Checker: probes every assigned check every interval and pushes its whole table."""

__all__: list[str] = []
