"""The whole fleet over mutual TLS: every listener HTTPS, every push verified both ways.

One `tls` block in the document serves for every role: listeners present the server
certificate (for 127.0.0.1) and demand a client certificate signed by the CA; checkers
and aggregators push with the client certificate and verify the receiver against the
same CA. The fleet must work end to end (tables flow, an AZ failure is detected), and
a push without a client certificate must not reach any receiver.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import pytest

from sim.chaos import fast_plan, live_fleet
from sim.observe import metric
from sim.testing import signed_table, wait_until
from urn.config import Tls
from urn.http import client_ssl_context
from urn.push import AiohttpTransport, push_all

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Certs

pytestmark = pytest.mark.e2e


async def test_a_fleet_over_mutual_tls_serves_and_detects(tmp_path: Path, certs: Certs) -> None:
    plan = fast_plan(resolvers=1, aggregators=2)

    def over_mtls(document: dict[str, Any]) -> None:
        document["aggregators"] = [
            u.replace("http://", "https://") for u in document["aggregators"]
        ]
        document["resolvers"] = [u.replace("http://", "https://") for u in document["resolvers"]]
        document["tls"] = certs.mtls_block()

    client = client_ssl_context(
        Tls(ca=certs.ca, client_cert=certs.client_cert, client_key=certs.client_key)
    )
    async with live_fleet(tmp_path, plan, edit=over_mtls, client_ssl=client) as live:

        async def fresh() -> bool:
            return (await live.healthz("resolver-1"))["table"]["state"] == "fresh"

        await wait_until(fresh, 20, message="a table pushed over mTLS reaching the resolver")
        await live.wait_answers(dead=())

        async def every_push_accepted() -> bool:
            # A checker's first push may race the resolver's first table on a busy
            # machine; what must hold is that every pair's pushes get through.
            for aggregator in ("aggregator-1", "aggregator-2"):
                samples = await live.metrics(aggregator)
                for checker in ("checker-a1", "checker-b1", "checker-c1"):
                    accepted = metric(
                        samples, "urn_tables_received_total", sender=checker, result="accepted"
                    )
                    if accepted == 0:
                        return False
            return True

        await wait_until(
            every_push_accepted, 20, message="every checker's table accepted by both aggregators"
        )
        await live.set_mode("b", "refuse")
        await live.wait_answers(dead={"b"})

        # Without a client certificate, a push never reaches the resolver's receiver.
        samples = await live.metrics("resolver-1")
        accepted_before = metric(samples, "urn_tables_received_total", result="accepted")
        rejected_before = metric(samples, "urn_tables_rejected_total")
        no_cert = AiohttpTransport(ssl.create_default_context(cafile=certs.ca))
        try:
            [outcome] = await push_all(
                no_cert,
                [live.url("resolver-1")],
                signed_table(bytes(256), sender="intruder"),
                timeout=5.0,
            )
        finally:
            await no_cert.close()
        assert outcome.result == "error", outcome
        samples = await live.metrics("resolver-1")
        assert metric(samples, "urn_tables_received_total", sender="intruder") == 0
        assert metric(samples, "urn_tables_rejected_total") == rejected_before  # none reached it

        async def still_accepting() -> bool:
            samples = await live.metrics("resolver-1")
            return metric(samples, "urn_tables_received_total", result="accepted") > (
                accepted_before
            )

        await wait_until(still_accepting, 20, message="the fleet's own pushes still accepted")
