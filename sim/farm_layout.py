"""Where every simulated target lives, and what each failure mode means (pure).

Owns: the deterministic layout (azs, targets per AZ, base port, kinds) -> target specs,
the names of the modes, validation of a mode change, and turning specs into config
`checks` entries, so a config generator can write checks without a running farm.
Never: opens sockets or reads clocks; `sim.farm` serves what this module describes.
Cost: O(targets), once per layout.

Layout. AZ `a`, `b`, `c`, ... has index i = 1, 2, 3, ... and owns 127.0.i.0/24. Target
j (0-based) of an AZ has the id `<az>-<j>`, the address 127.0.i.(1 + j mod 250) and the
port base_port + j div 250, so every target is its own listener on its own (address,
port), as real hosts are; HTTP targets also have the path `/t/<id>`. With `kinds`
`mixed`, every fourth target (j mod 4 == 3) is TCP, the rest HTTP. base_port 0 asks for
an ephemeral port per listener (tests); the farm then reports the ports it bound.

Why a listener per target rather than one per AZ with targets told apart by path: every
mode is then real for a single target as for a whole AZ (refuse is ECONNREFUSED from the
kernel, drop is SYNs dropped), TCP targets need their own listener anyway, and the cost
is small (10,000 listeners open in about 0.2 s of CPU and 30 MB on uvloop). An AZ's
switch is the same switch applied to each of its targets.
"""

# urn: pure

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "KIND_CHOICES",
    "MAX_AZS",
    "PER_HOST",
    "Kind",
    "Mode",
    "ModeChange",
    "TargetSpec",
    "az_index",
    "az_names",
    "checks_for",
    "layout",
    "mode_change_body",
    "parse_mode_change",
]

PER_HOST = 250  # addresses 127.0.i.1 ... 127.0.i.250 per port, then the next port
MAX_AZS = 26
KIND_CHOICES = ("http", "tcp", "mixed")
MAX_DELAY = 3600.0


class Kind(StrEnum):
    HTTP = "http"
    TCP = "tcp"


class Mode(StrEnum):
    """How a target behaves; see `sim.farm` for what each does to HTTP and TCP."""

    HEALTHY = "healthy"
    BAD_STATUS = "bad_status"
    BODY_MISMATCH = "body_mismatch"
    BLACKHOLE = "blackhole"
    DROP = "drop"
    SLOW = "slow"
    RESET = "reset"
    CLOSE_MID_RESPONSE = "close_mid_response"
    REFUSE = "refuse"


_MODE_VALUES = frozenset(m.value for m in Mode)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target: what a check must say to probe it."""

    id: str
    az: str
    kind: Kind
    host: str
    port: int
    path: str  # "" for TCP targets

    def with_port(self, port: int) -> TargetSpec:
        return TargetSpec(self.id, self.az, self.kind, self.host, port, self.path)


def az_names(count: int) -> tuple[str, ...]:
    """The first `count` AZ names: a, b, c, ..."""
    if not 1 <= count <= MAX_AZS:
        raise ValueError(f"azs: {count} is not between 1 and {MAX_AZS}")
    return tuple(string.ascii_lowercase[:count])


def az_index(az: str) -> int:
    """a -> 1, b -> 2, ...: the third octet of the AZ's loopback addresses."""
    if len(az) != 1 or az not in string.ascii_lowercase:
        raise ValueError(f"az: {az!r} is not one of a..z")
    return ord(az) - ord("a") + 1


def _kind_of(kinds: str, j: int) -> Kind:
    if kinds == "mixed":
        return Kind.TCP if j % 4 == 3 else Kind.HTTP
    return Kind(kinds)


def layout(
    azs: int | Sequence[str],
    per_az: int,
    base_port: int,
    kinds: str = "http",
    host: str | None = None,
) -> tuple[TargetSpec, ...]:
    """Every target of a farm, AZ by AZ, in a fixed order (the same inputs, the same specs).

    With `host` (containers: `0.0.0.0` or a service name), every target shares that host
    and has its own port, base_port + its position in the whole layout.
    """
    names = az_names(azs) if isinstance(azs, int) else tuple(azs)
    if len(set(names)) != len(names):
        raise ValueError(f"azs: {list(names)} repeats a name")
    indexes = [az_index(az) for az in names]
    if kinds not in KIND_CHOICES:
        raise ValueError(f"kinds: {kinds!r} is not one of {', '.join(KIND_CHOICES)}")
    if per_az < 1:
        raise ValueError(f"per_az: {per_az} must be at least 1")
    ports_needed = len(names) * per_az if host else math.ceil(per_az / PER_HOST)
    if not (base_port == 0 or 1 <= base_port <= 65536 - ports_needed):
        raise ValueError(
            f"base_port: {base_port} leaves no room for {ports_needed} ports (or use 0)"
        )
    specs: list[TargetSpec] = []
    for az, i in zip(names, indexes, strict=True):
        for j in range(per_az):
            target_id = f"{az}-{j}"
            kind = _kind_of(kinds, j)
            specs.append(
                TargetSpec(
                    id=target_id,
                    az=az,
                    kind=kind,
                    host=host or f"127.0.{i}.{1 + j % PER_HOST}",
                    port=(
                        0
                        if not base_port
                        else base_port + len(specs)
                        if host
                        else base_port + j // PER_HOST
                    ),
                    path=f"/t/{target_id}" if kind is Kind.HTTP else "",
                )
            )
    return tuple(specs)


def mode_change_body(
    mode: Mode | str,
    az: str | None = None,
    targets: Sequence[str] | None = None,
    delay: float | None = None,
) -> dict[str, Any]:
    """The control API's JSON for a mode change (what `parse_mode_change` reads)."""
    body: dict[str, Any] = {"mode": str(mode)}
    if az is not None:
        body["az"] = az
    if targets is not None:
        body["targets"] = list(targets)
    if delay is not None:
        body["delay"] = delay
    return body


def checks_for(
    specs: Sequence[TargetSpec],
    *,
    first_slot: int = 0,
    search: str = "ok",
    extra: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Config `checks` entries for `specs`, in order, slots from `first_slot` on."""
    checks: list[dict[str, Any]] = []
    for n, spec in enumerate(specs):
        if spec.port == 0:
            raise ValueError(f"target {spec.id} has no port yet (start the farm first)")
        check: dict[str, Any] = {
            "slot": first_slot + n,
            "name": spec.id,
            "type": spec.kind.value,
            "host": spec.host,
            "port": spec.port,
            "az": spec.az,
        }
        if spec.kind is Kind.HTTP:
            check["path"] = spec.path
            check["search"] = search
        if extra:
            check.update(extra)
        checks.append(check)
    return checks


@dataclass(frozen=True, slots=True)
class ModeChange:
    """A validated request: set `mode` (and `delay` for slow) on `targets`."""

    mode: Mode
    targets: tuple[str, ...]
    delay: float | None = None


def parse_mode_change(body: object, known: Mapping[str, str], azs: Sequence[str]) -> ModeChange:
    """Validate `{"az"|"targets", "mode", "delay"?}` against the farm; raise ValueError.

    `known` maps target id -> az. Nothing is changed here; a rejected request changes
    nothing anywhere.
    """
    if not isinstance(body, Mapping):
        raise ValueError("body must be a JSON object")
    unknown_keys = set(body) - {"az", "targets", "mode", "delay"}
    if unknown_keys:
        raise ValueError(f"unknown field(s): {', '.join(sorted(map(str, unknown_keys)))}")
    mode_value = body.get("mode")
    if not isinstance(mode_value, str) or mode_value not in _MODE_VALUES:
        choices = ", ".join(m.value for m in Mode)
        raise ValueError(f"mode: {mode_value!r} is not one of {choices}")
    mode = Mode(mode_value)
    delay = body.get("delay")
    if delay is not None:
        if mode is not Mode.SLOW:
            raise ValueError("delay: applies only to mode slow")
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not 0 <= delay <= MAX_DELAY
        ):
            raise ValueError(f"delay: {delay!r} must be a number of seconds in [0, {MAX_DELAY:g}]")
        delay = float(delay)
    if ("az" in body) == ("targets" in body):
        raise ValueError("give exactly one of az or targets")
    if "az" in body:
        az = body["az"]
        if az not in azs:
            raise ValueError(f"az: {az!r} is not one of {', '.join(azs)}")
        ids = tuple(t for t, t_az in known.items() if t_az == az)
    else:
        targets = body["targets"]
        if (
            not isinstance(targets, list)
            or not targets
            or not all(isinstance(t, str) for t in targets)
        ):
            raise ValueError("targets: must be a non-empty list of target ids")
        missing = [t for t in targets if t not in known]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ValueError(f"targets: unknown id(s): {shown}")
        ids = tuple(dict.fromkeys(targets))
    return ModeChange(mode=mode, targets=ids, delay=delay)
