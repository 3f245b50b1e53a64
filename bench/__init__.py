"""Benchmarks: micro benches of the pure cores and the mass-AZ-failure scenario."""

__all__: list[str] = []
