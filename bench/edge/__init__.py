"""The edge-triggered contrast design: the same probes, but only changes travel.

Checkers send batches of (slot, new value) events per push interval plus a heartbeat;
the aggregator keeps per-slot N-of-M vote counters updated per event and forwards
per-change verdicts; resolvers apply deltas to their table. Built the way a careful
engineer builds an event-driven system (sequence numbers, snapshots on resync,
heartbeats, staleness expiry), so the benchmark compares designs, not straw men.
"""

__all__: list[str] = []
