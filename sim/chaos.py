"""Faults for a live local fleet: start one, query it, kill, pause, restart, read its health.

Used by the reliability tests (tests/reliability) and by `bench/soak.py`. A `LiveFleet`
is the target farm (`urn targets serve`) plus the processes a `FleetPlan` describes,
every one a real `python -m urn ROLE` process supervised by `sim.fleet.Fleet`, so
nothing outlives the `async with`. `right_answer` is the pure judgement of one answer
set against which AZs are known dead, the same rules the resolver must follow.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype

from sim.farm_layout import layout
from sim.fleet import Fleet
from sim.observe import Samples, metric, scrape
from sim.scenario import FleetPlan, attribute, build_document
from sim.testing import free_port, wait_until
from sim.testing.bounds import SLACK_ENV, LoopLag, slack
from sim.verdict import Verdict, judge
from urn.config.model import Defaults

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
    from pathlib import Path

    from sim.farm_layout import TargetSpec
    from sim.observe import DnsWatcher
    from sim.verdict import Seen

__all__ = [
    "FAST_FLEET",
    "LiveFleet",
    "design_detection",
    "detection_bound",
    "detection_report",
    "expected_answers",
    "fast_plan",
    "judge_outage",
    "live_fleet",
    "loop_lateness",
    "member_lateness",
    "plan_with_ports",
    "right_answer",
]

MULTIVALUE_MAX = 8


def plan_with_ports(**kwargs: Any) -> FleetPlan:
    """A FleetPlan with free loopback ports (below the ephemeral range) for every process."""
    resolvers = kwargs.get("resolvers", 1)
    aggregators = kwargs.get("aggregators", 2)
    azs = kwargs.get("azs", ("a", "b", "c"))
    checkers = len(azs) * kwargs.get("checkers_per_az", 1)
    ports: set[int] = set()

    def fresh() -> int:
        while (port := free_port(udp=True, stable=True)) in ports:
            pass
        ports.add(port)
        return port

    return FleetPlan(
        aggregator_ports=tuple(fresh() for _ in range(aggregators)),
        resolver_ports=tuple((fresh(), fresh()) for _ in range(resolvers)),
        checker_ports=tuple(fresh() for _ in range(checkers)),
        **kwargs,
    )


# The quick fleet the reliability tests and the soak run: detection within about a second
# on loopback, urn's shipped verdict rule, config re-read every 2 s.
FAST_FLEET: dict[str, Any] = {
    "probe_interval": 0.5,
    "push_interval": 0.25,
    "config_interval": 2.0,
    "timeout": 0.25,
    "capacity": 256,
}


def fast_plan(**overrides: Any) -> FleetPlan:
    """`plan_with_ports` with the FAST_FLEET timings, then `overrides`."""
    return plan_with_ports(**{**FAST_FLEET, **overrides})


def design_detection(plan: FleetPlan) -> float:
    """The worst case the intervals alone give for `plan`'s fleet to turn away from a
    failed AZ (docs/verdicts.md, "Detection, from the intervals", with q/k at most 1):
    `failures` probe intervals, a probe timeout, one push interval and the aggregate lag."""
    failures = plan.failures if plan.failures is not None else Defaults().failures
    lag = float(plan.extra.get("intervals", {}).get("aggregate_lag", 0.1 * plan.push_interval))
    return failures * plan.probe_interval + plan.timeout + plan.push_interval + lag


def detection_bound(plan: FleetPlan) -> float:
    """Seconds after an AZ fails by which the fault tests hold `plan`'s fleet to serving
    none of its answers: `design_detection` times the one test slack factor
    (sim.testing.bounds.slack, $URN_TEST_SLACK)."""
    return design_detection(plan) * slack()


def judge_outage(
    records: Sequence[Mapping[str, Any]],
    history: Mapping[str, Sequence[Seen]],
    plan: FleetPlan,
    dead_az: str,
    outage: tuple[float, float],
) -> Verdict:
    """`sim.verdict.judge` of `dead_az` down over `outage` (failed at, restored at), held
    to `detection_bound(plan)` both for turning away and for settling after the restore."""
    failed_at, restored_at = outage
    bound = detection_bound(plan)
    return judge(
        records,
        history,
        dead_az=dead_az,
        failed_at=failed_at,
        restored_at=restored_at,
        bound=bound,
        settle=bound,
    )


def detection_report(plan: FleetPlan, detection: Mapping[str, float]) -> str:
    """The measured detection times against `plan`'s bound and how that bound is made."""
    measured = ", ".join(f"{k} {v:.2f} s" for k, v in Verdict.spread(detection.values()).items())
    return (
        f"detection {measured or 'not measured'}; bound {detection_bound(plan):.2f} s ="
        f" {design_detection(plan):.3f} s from the intervals x {SLACK_ENV}={slack()}"
    )


def member_lateness(member: str, samples: Samples) -> str:
    """One line on how late `member`'s own loops ran, from its /metrics samples: ticks
    that started late (urn_ticks_late) and, for a checker, how late its probes started
    (urn_probe_lateness_seconds: count, mean, the bucket the latest fell in) and how many
    it skipped for falling a whole interval behind (urn_probes_skipped)."""
    parts = [f"{member}: {metric(samples, 'urn_ticks_late_total'):.0f} ticks late"]
    probes = metric(samples, "urn_probe_lateness_seconds_count")
    if probes:
        mean = metric(samples, "urn_probe_lateness_seconds_sum") / probes
        bounds = sorted(
            float(key.split('le="', 1)[1].split('"', 1)[0])
            for key, value in samples.items()
            if key.startswith("urn_probe_lateness_seconds_bucket{") and value >= probes
        )
        worst = f"at most {bounds[0] * 1000:g} ms" if bounds[0] != float("inf") else "over 5 s"
        parts.append(
            f"{probes:.0f} probes started {mean * 1000:.1f} ms late on average, the latest"
            f" {worst} late, {metric(samples, 'urn_probes_skipped_total'):.0f} skipped"
        )
    return ", ".join(parts)


async def loop_lateness(session: aiohttp.ClientSession, urls: Mapping[str, str]) -> str:
    """`member_lateness` of every member in `urls` (member -> base URL), one a line, for
    the message of a failed timing bound: it tells a slow machine (every member late)
    from a slow urn (loops on time, answers late)."""
    lines = []
    for member, url in sorted(urls.items()):
        try:
            lines.append(member_lateness(member, await scrape(session, f"{url}/metrics")))
        except (aiohttp.ClientError, TimeoutError) as exc:
            lines.append(f"{member}: /metrics unreadable ({type(exc).__name__})")
    return "loop lateness of the fleet's members:\n  " + "\n  ".join(lines)


def _az(value: str) -> str | None:
    where = attribute(value)
    return where[0] if where else None


def expected_answers(record: Mapping[str, Any], dead: Collection[str]) -> list[frozenset[str]]:
    """Every answer set a correct resolver may give for `record` with AZs `dead` down."""
    answers = list(record["answers"])
    healthy = [a for a in answers if _az(a["value"]) not in dead]
    policy = record["policy"]
    if not healthy:  # fail open: answer as if every answer were healthy
        healthy = answers
    values = [str(a["value"]) for a in healthy]
    if policy in ("simple",) or (policy == "multivalue" and len(values) <= MULTIVALUE_MAX):
        return [frozenset(values)]
    if policy == "multivalue":
        return []  # any 8 of them; judged by right_answer
    if policy == "weighted":
        weighted = [str(a["value"]) for a in healthy if a.get("weight", 1) > 0]
        return [frozenset({v}) for v in (weighted or values)]
    # failover
    by_role = {a.get("role"): str(a["value"]) for a in healthy}
    if "primary" in by_role:
        return [frozenset({by_role["primary"]})]
    return [frozenset({by_role.get("secondary", values[0])})]


def right_answer(
    record: Mapping[str, Any], answers: frozenset[str], rcode: int, dead: Collection[str]
) -> bool:
    """Whether a NOERROR answer set is one the rules allow with AZs `dead` down."""
    if rcode != 0:
        return False
    allowed = expected_answers(record, dead)
    if allowed:
        return answers in allowed
    healthy = {str(a["value"]) for a in record["answers"] if _az(a["value"]) not in dead}
    return len(answers) == MULTIVALUE_MAX and answers <= healthy


@dataclass
class LiveFleet:
    """A running fleet and the ways to poke at it."""

    fleet: Fleet
    plan: FleetPlan
    document: dict[str, Any]
    config: Path
    control: str | None
    session: aiohttp.ClientSession
    paused: set[str] = field(default_factory=set)
    urls: dict[str, str] = field(default_factory=dict)  # member -> base URL (http or https)
    lag: LoopLag = field(default_factory=LoopLag)  # this process's loop, once the fleet is up

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self.document["records"])

    @property
    def names(self) -> list[str]:
        return [r["name"] for r in self.records]

    def record(self, name: str) -> dict[str, Any]:
        return next(r for r in self.records if r["name"] == name)

    def url(self, member: str) -> str:
        return self.urls[member]

    async def wait_up(self, members: Collection[str], timeout: float = 30.0) -> None:
        """Wait until each member's /healthz answers through this fleet's own session."""
        for member in members:

            async def up(member: str = member) -> bool:
                if not self.fleet.members[member].alive:
                    raise RuntimeError(f"{member} exited:\n{self.fleet.tail(member)}")
                try:
                    await self.healthz(member)
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    return False
                return True

            await wait_until(up, timeout, message=f"{member} serving /healthz")

    def dns_address(self, resolver: int = 0) -> tuple[str, int]:
        return "127.0.0.1", self.plan.resolver_ports[resolver][1]

    async def healthz(self, member: str) -> dict[str, Any]:
        async with self.session.get(f"{self.url(member)}/healthz") as response:
            body: dict[str, Any] = await response.json(content_type=None)
            return body

    def wrong_answers(
        self, watcher: DnsWatcher, since: float, until: float, dead: Collection[str]
    ) -> list[str]:
        """The answers `watcher` saw in [since, until) that break the rules for `dead`."""
        wrong = []
        for name, seen in watcher.observations(since):
            if seen.at < until and not right_answer(
                self.record(name), seen.answers, seen.rcode, dead
            ):
                wrong.append(
                    f"{seen.at - since:.2f}s {name} {sorted(seen.answers)} rcode {seen.rcode}"
                )
        return wrong

    async def readyz(self, member: str) -> tuple[int, dict[str, Any]]:
        """`member`'s /readyz: its status and body."""
        async with self.session.get(f"{self.url(member)}/readyz") as response:
            body: dict[str, Any] = await response.json(content_type=None)
            return response.status, body

    async def metrics(self, member: str) -> Samples:
        return await scrape(self.session, f"{self.url(member)}/metrics")

    async def lateness(self) -> str:
        """How late every running member's own loops ran so far (`loop_lateness`), and
        this process's, which stamps every answer a watcher sees."""
        alive = {
            m: u
            for m, u in self.urls.items()
            if self.fleet.members[m].alive and m not in self.paused
        }
        return f"{await loop_lateness(self.session, alive)}\n  {self.lag}"

    async def query(
        self, name: str, resolver: int = 0, timeout: float = 1.0
    ) -> tuple[int, frozenset[str]] | None:
        """One UDP DNS query: (rcode, answer values), or None when nothing came back."""
        query = dns.message.make_query(name, dns.rdatatype.A)
        host, port = self.dns_address(resolver)
        try:
            reply = await dns.asyncquery.udp(query, host, port=port, timeout=timeout)
        except (dns.exception.Timeout, OSError):
            return None
        values = frozenset(rdata.to_text() for rrset in reply.answer for rdata in rrset)
        return reply.rcode(), values

    async def wait_answers(
        self,
        dead: Collection[str],
        resolver: int = 0,
        timeout: float = 20.0,
        names: Sequence[str] | None = None,
    ) -> None:
        """Wait until every name (or `names`) answers right for `dead` on one resolver."""
        wanted = list(names or self.names)

        async def all_right() -> bool:
            for name in wanted:
                got = await self.query(name, resolver)
                if got is None or not right_answer(self.record(name), got[1], got[0], dead):
                    return False
            return True

        await wait_until(
            all_right, timeout, message=f"resolver {resolver} answering for dead={sorted(dead)}"
        )

    async def wait_aggregators(self, dead: Collection[str], timeout: float = 20.0) -> None:
        """Wait until every running aggregator's table marks exactly the `dead` AZs' slots.

        Replicas see checker tables at different moments, so one may lag a tick behind
        the resolvers' answers; a test that then silences them must wait for all.
        """
        expected = sum(1 for check in self.document["checks"] if check.get("az") in dead)
        members = [n for n, m in self.fleet.members.items() if n.startswith("aggregator")]

        async def agreed() -> bool:
            for member in members:
                if not self.fleet.members[member].alive:
                    continue
                samples = await self.metrics(member)
                if metric(samples, "urn_slots", status="unhealthy") != expected:
                    return False
            return True

        await wait_until(agreed, timeout, message=f"aggregators marking {sorted(dead)} dead")

    async def set_mode(self, az: str, mode: str) -> None:
        assert self.control is not None, "this fleet has no target farm"
        async with self.session.post(
            f"{self.control}/v1/mode", json={"az": az, "mode": mode}
        ) as response:
            assert response.status == 200, await response.text()

    def pause(self, member: str) -> None:
        """SIGSTOP: the process stays, silent (no pushes, no answers)."""
        self.fleet.kill(member, signal.SIGSTOP)
        self.paused.add(member)

    def resume(self, member: str) -> None:
        self.fleet.kill(member, signal.SIGCONT)
        self.paused.discard(member)

    async def kill9(self, member: str) -> int:
        self.fleet.kill(member, signal.SIGKILL)
        return await self.fleet.wait_exit(member)

    async def restart(self, member: str, *, wait: bool = True) -> None:
        """Start a killed member again with its own command line."""
        old = self.fleet.members[member]
        if old.alive:
            await self.kill9(member)
        await self.fleet.start(member, old.args, old.health_url, prefix=old.prefix)
        if wait:
            await self.wait_up([member])

    def rss(self) -> dict[str, int]:
        return {n: m.rss_bytes() for n, m in self.fleet.members.items() if m.alive}

    def rewrite_config(self, text: str) -> None:
        """Replace the config file atomically (readers see the old or the new, whole)."""
        temporary = self.config.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(self.config)


def farm_args(azs: int, per_az: int, base_port: int, control_port: int) -> list[str]:
    return [
        "targets",
        "serve",
        "--azs",
        str(azs),
        "--per-az",
        str(per_az),
        "--base-port",
        str(base_port),
        "--control",
        f"127.0.0.1:{control_port}",
    ]


@contextlib.asynccontextmanager
async def live_fleet(
    run_dir: Path,
    plan: FleetPlan,
    *,
    per_az: int = 4,
    retarget: Callable[[TargetSpec], TargetSpec] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    client_ssl: ssl.SSLContext | None = None,
    wrap: Callable[[str], Sequence[str]] | None = None,
) -> AsyncIterator[LiveFleet]:
    """Start the farm and the plan's processes; stop every one of them afterwards.

    `retarget` may point some checks elsewhere (a target outside the farm); `edit` may
    change the generated document before it is written. With `client_ssl`, the roles
    serve HTTPS (the document's `tls` says how) and are reached with that context.
    `wrap(member)` gives a command prefix a member runs under (a mount namespace with
    its own view of the world, say).
    """
    base_port = free_port(stable=True)
    control_port = free_port(stable=True)
    specs = layout(plan.azs, per_az, base_port)
    if retarget is not None:
        specs = tuple(retarget(spec) for spec in specs)
    document = build_document(specs, plan)
    if edit is not None:
        edit(document)
    config = run_dir / "urn.json"  # JSON is YAML; json also writes StrEnum kinds as text
    config.write_text(json.dumps(document, indent=1))
    env = {"URN_PUSH_KEY": secrets.token_hex(32)}
    timeout = aiohttp.ClientTimeout(total=5)
    connector = aiohttp.TCPConnector(ssl=client_ssl if client_ssl is not None else True)
    async with (
        Fleet(run_dir, env=env) as fleet,
        aiohttp.ClientSession(timeout=timeout, connector=connector) as session,
    ):
        control = f"http://127.0.0.1:{control_port}"
        args = farm_args(len(plan.azs), per_az, base_port, control_port)
        await fleet.start("targets", args, f"{control}/healthz")
        live = LiveFleet(fleet, plan, document, config, control, session)
        started = []
        for name, args, health in plan.processes(str(config)):
            assert health is not None
            base = health.removesuffix("/healthz")
            live.urls[name] = base.replace("http://", "https://") if client_ssl else base
            await fleet.start(name, args, None, prefix=wrap(name) if wrap is not None else ())
            started.append(name)
        try:
            await fleet.wait_healthy(["targets"], timeout=30)
            await live.wait_up(started)
            live.lag.start()
            yield live
        finally:
            await live.lag.stop()
            for member in list(live.paused):
                with contextlib.suppress(ProcessLookupError, KeyError):
                    live.resume(member)
