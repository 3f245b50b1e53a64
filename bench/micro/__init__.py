"""Micro benchmarks of the pure cores; each module's docstring says what it measures."""

__all__: list[str] = []
