"""Resolver: answers DNS-style queries from the newest health table, over HTTP and DNS."""

__all__: list[str] = []
