"""The PNG timeline `urn demo` writes at the end of a run, from the fleet's own /v1/status.

Owns: decoding the timelines (urn.status `Timeline.encoded`) of the snapshots it is
handed and drawing them with matplotlib: unhealthy slots per AZ as the aggregator saw
them, queries per second and fail-open answers at the resolver, and table age, with
the run's phases marked. matplotlib is optional (the `bench`/`test` extras): without it
`write_png` returns the reason it drew nothing.
Never: talks to the fleet itself; the caller fetches the snapshots.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    import numpy.typing as npt

__all__ = ["decode_timeline", "write_png"]


def decode_timeline(snapshot: Mapping[str, Any]) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
    """(seconds before the snapshot of each sample, column name -> values), oldest first;
    only the samples taken so far."""
    timeline = snapshot["timeline"]
    length = int(timeline["length"])
    filled = int(str(timeline["filled"]).strip() or 0)
    data = np.frombuffer(base64.b64decode(timeline["data"]), dtype="<f4")
    data = data.reshape(len(timeline["columns"]), length)[:, length - filled :]
    step = float(timeline["step"])
    seconds = ((np.arange(filled) - (filled - 1)) * step).astype(np.float64)
    return seconds, {name: data[i].astype(np.float64) for i, name in enumerate(timeline["columns"])}


def write_png(
    path: Path,
    aggregator: Mapping[str, Any],
    resolver: Mapping[str, Any],
    phases: Sequence[tuple[str, float, float]] = (),
) -> str | None:
    """Draw the run's timeline into `path`; None when written, else why not.

    `phases` are (name, start, end) in seconds before the snapshots were taken
    (negative numbers), drawn as shaded spans.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'urn[bench]')"
    agg_t, agg = decode_timeline(aggregator)
    res_t, res = decode_timeline(resolver)
    start = min([*(s for _, s, _ in phases), float(agg_t[0]) if len(agg_t) else 0.0])
    fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    for name, values in agg.items():
        if name.startswith("unhealthy:"):
            axes[0].plot(agg_t, values, label=f"AZ {name.split(':', 1)[1]}", lw=1.2)
    axes[0].set_ylabel("unhealthy slots\n(aggregator)")
    axes[1].plot(res_t, res["queries_per_s"], lw=1.0, color="tab:blue")
    axes[1].set_ylabel("queries/s\n(resolver)")
    axes[2].plot(res_t, res["fail_open_answers"], lw=1.0, color="tab:orange")
    axes[2].set_ylabel("fail-open answers\nper interval")
    axes[3].plot(res_t, res["table_age"], lw=1.0, label="resolver table age")
    axes[3].plot(agg_t, agg["oldest_table_age"], lw=1.0, label="aggregator: oldest input")
    axes[3].set_ylabel("age (s)")
    axes[3].set_xlabel("seconds before the end of the run")
    shades = {"steady": "#e8f5e9", "failure": "#ffebee", "recovery": "#e3f2fd"}
    for axis in axes:
        for name, begin, end in phases:
            axis.axvspan(begin, end, color=shades.get(name, "#eeeeee"), zorder=0)
        axis.set_xlim(start, 0)
        axis.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[3].legend(loc="upper left", fontsize=8)
    for name, begin, end in phases:
        axes[0].text(
            (begin + end) / 2,
            1.02,
            name,
            transform=axes[0].get_xaxis_transform(),
            ha="center",
            fontsize=9,
        )
    fig.suptitle(f"urn demo: {aggregator['id']} and {resolver['id']}, from their /v1/status")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
