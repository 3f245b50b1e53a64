"""Helpers to run a resolver in-process on loopback port 0 (tests, benches, the demo)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from resolver.service import SERVICE, ResolverService, make_app
from resolver.settings import ResolverSettings
from urn.http import serve
from urn.testing import TEST_PUSH_KEY, signed_table
from urn.wire import TableKind

if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator, Mapping
    from pathlib import Path

    from prometheus_client import CollectorRegistry

    from urn.clock import Clock

__all__ = ["TEST_ENVIRON", "RunningResolver", "running_resolver", "write_config"]

TEST_ENVIRON = {"URN_PUSH_KEY": TEST_PUSH_KEY.decode()}


def write_config(path: Path, document: Mapping[str, Any]) -> Path:
    """Write a config document as JSON (valid YAML) and return its path."""
    path.write_text(json.dumps(document))
    return path


@dataclass
class RunningResolver:
    service: ResolverService
    url: str  # http://127.0.0.1:PORT
    dns_port: int

    async def push(
        self,
        slots: bytes,
        *,
        sender: str = "agg-1",
        sequence: int | None = None,
        generated_at: float | None = None,
    ) -> tuple[int, str]:
        """POST a signed aggregated table, as an aggregator would; (status, body)."""
        body = signed_table(
            slots,
            kind=TableKind.AGGREGATE,
            sender=sender,
            sequence=time.time_ns() if sequence is None else sequence,
            generated_at=self.service.clock.time() if generated_at is None else generated_at,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/v1/table",
                data=body,
                headers={"Content-Type": "application/msgpack"},
            ) as response,
        ):
            return response.status, await response.text()


@contextlib.asynccontextmanager
async def running_resolver(
    config: Path | str,
    *,
    dns: bool = True,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    resolver_id: str = "res-test",
) -> AsyncIterator[RunningResolver]:
    """A resolver serving HTTP and (unless `dns=False`) DNS on free loopback ports."""
    settings = ResolverSettings(
        id=resolver_id,
        config=str(config),
        http_host="127.0.0.1",
        http_port=0,
        dns_host="127.0.0.1" if dns else None,
        dns_port=0,
    )
    app = make_app(
        settings,
        clock=clock,
        rng=rng,
        registry=registry,
        environ=TEST_ENVIRON if environ is None else environ,
    )
    runner, port = await serve(app, "127.0.0.1", 0)
    try:
        service = app[SERVICE]
        yield RunningResolver(
            service=service,
            url=f"http://127.0.0.1:{port}",
            dns_port=0 if service.dns is None else service.dns.port,
        )
    finally:
        await runner.cleanup()
