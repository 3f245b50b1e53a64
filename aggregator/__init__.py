"""Aggregator: N-of-M conditioning over checker tables; pushes the whole health table."""

__all__: list[str] = []
