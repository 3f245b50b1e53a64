"""The status page every role serves at `/ui`: one self-contained `index.html` (no build
step, no network fetch beyond its own process's `/v1/status*`)."""

__all__: list[str] = []
