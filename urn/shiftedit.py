"""Zonal shifts as `urn shift` edits them: durations, the document edit, what the fleet does.

Owns: reading `--for` (`90s`, `30m`, `2h`, `1h30m`, bounded to MIN_LEVER_SPAN ..
LEVER_HORIZON); the new `shifts` list (one per AZ: `start` replaces, `end` removes); the
new document text; and the summary of what the fleet will do with it.
The edit touches nothing but `shifts`. JSON is dumped whole (it has no comments to lose;
key order and indentation are kept). YAML is edited as text, so its comments and layout
survive: an existing top-level `shifts:` block (its key's line through its value's last
line; comments above and below it stay) is replaced, or a new block is appended at the
end; with no shifts left the block goes, so `start` then `end` gives back the same bytes.
The result is parsed again and must equal the intended document, `shifts` aside nothing
changed; only when that fails (a flow-style top level, an alias, several documents) is
the document dumped whole, and `Edited.whole` says so, for the command to warn.
Never: reads files or clocks (`now` is an argument), or writes anything.
Cost: O(size of the document) per edit: one parse for the block's place, one to verify.
"""

# urn: pure

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml

from urn.config.levers import LEVER_HORIZON, MIN_LEVER_SPAN, format_time, parse_time
from urn.config.load import load_text
from urn.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from urn.config import Document

__all__ = [
    "Edited",
    "Impact",
    "describe_end",
    "describe_list",
    "describe_start",
    "edit_text",
    "end_shift",
    "format_span",
    "impact",
    "parse_span",
    "shift_entries",
    "start_shift",
    "with_shifts",
]

Entry = dict[str, str]  # one `shifts` item as written: az, until (RFC 3339), reason

_SPAN = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (("h", 3600), ("m", 60), ("s", 1))
_LISTED = 10  # record names a summary spells out before "and N more"


def parse_span(text: str) -> float:
    """Seconds of a `--for` duration (`90s`, `30m`, `2h`, `1h30m`), within 1m .. 72h."""
    match = _SPAN.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ConfigError("--for", text, "must be a duration like 90s, 30m, 2h or 1h30m")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    span = float(hours * 3600 + minutes * 60 + seconds)
    if not MIN_LEVER_SPAN <= span <= LEVER_HORIZON:
        raise ConfigError(
            "--for",
            text,
            f"is outside {format_span(MIN_LEVER_SPAN)} to {format_span(LEVER_HORIZON)}: a "
            "zonal shift lasts at least a minute and always ends by itself",
        )
    return span


def format_span(seconds: float) -> str:
    """`29m 59s`, `1h 30m`, `72h`: whole seconds, zero units left out."""
    left = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


# --- the new shifts list ----------------------------------------------------------------


def _time_text(value: object) -> str:
    if isinstance(value, datetime):  # YAML reads an unquoted timestamp as a datetime
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def shift_entries(raw: Mapping[str, Any]) -> list[Entry]:
    """The document's `shifts` as written, each `until` as text; `raw` has validated."""
    return [
        {"az": str(item["az"]), "until": _time_text(item["until"]), "reason": str(item["reason"])}
        for item in raw.get("shifts") or ()
    ]


def start_shift(entries: Sequence[Entry], new: Entry) -> tuple[list[Entry], Entry | None]:
    """`entries` with `new` in place of its AZ's shift (or added); and the one replaced."""
    result = [dict(e) for e in entries]
    for i, entry in enumerate(result):
        if entry["az"] == new["az"]:
            result[i] = dict(new)
            return result, entry
    return [*result, dict(new)], None


def end_shift(entries: Sequence[Entry], az: str) -> tuple[list[Entry], Entry | None]:
    """`entries` without AZ `az`'s shift; and that shift, None when it had none."""
    gone = next((e for e in entries if e["az"] == az), None)
    return [dict(e) for e in entries if e["az"] != az], gone


def with_shifts(raw: Mapping[str, Any], entries: Sequence[Entry]) -> dict[str, Any]:
    """`raw` with `shifts` set to `entries` (in its place), or without it when empty."""
    result = dict(raw)
    if entries:
        result["shifts"] = [dict(e) for e in entries]
    else:
        result.pop("shifts", None)
    return result


# --- the new text -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Edited:
    text: str
    whole: bool  # True: the document had to be dumped whole (YAML comments and layout lost)


def edit_text(text: str, raw: Mapping[str, Any], entries: Sequence[Entry]) -> Edited:
    """The document `text` (already loaded as `raw`) with its `shifts` set to `entries`."""
    wanted = with_shifts(raw, entries)
    if _is_json(text):
        return Edited(_dump_json(text, wanted), whole=False)
    block = _yaml_block(entries, "\r\n" if "\r\n" in text else "\n")
    edited = _edit_yaml(text, block)
    if edited is not None and _loads_as(edited, wanted):
        return Edited(edited, whole=False)
    dumped = yaml.safe_dump(wanted, sort_keys=False, allow_unicode=True, width=1 << 20)
    if not _loads_as(dumped, wanted):  # pragma: no cover - safe_dump round-trips what it loaded
        raise ConfigError("", "shifts", "the document cannot be written back as YAML")
    return Edited(dumped, whole=True)


def _is_json(text: str) -> bool:
    if not text.lstrip().startswith("{"):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False  # YAML flow style starts with "{" too
    return True


def _dump_json(text: str, wanted: Mapping[str, Any]) -> str:
    indent = re.search(r"\n([ \t]+)\"", text)
    dumped = json.dumps(wanted, ensure_ascii=False, indent=indent.group(1) if indent else None)
    return dumped + ("\n" if text.endswith("\n") or indent else "")


def _yaml_block(entries: Sequence[Entry], newline: str) -> str:
    if not entries:
        return ""
    lines = ["shifts:"]
    for entry in entries:
        fields = ", ".join(f"{key}: {_scalar(entry[key])}" for key in ("az", "until", "reason"))
        lines.append(f"  - {{{fields}}}")
    return newline.join(lines) + newline


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


def _scalar(value: str) -> str:
    """`value` as a YAML scalar on one line: plain when it is a simple word that reads back
    as itself (`b`, `us-east-1a`), else double-quoted with every escape YAML needs."""
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    dumped: str = yaml.safe_dump(value, default_style='"', allow_unicode=True, width=1 << 20)
    return dumped.rstrip("\n")


_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _edit_yaml(text: str, block: str) -> str | None:
    """`text` with its top-level `shifts:` block replaced by `block` (appended when it has
    none); None when the top level is not a block mapping whose keys start their lines."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:  # pragma: no cover - the text loaded before it came here
        return None
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        return None
    if any(key.start_mark.column != 0 for key, _ in root.value):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "shifts":
            if value.start_mark.index < key.end_mark.index:
                return None  # an alias to a node above: not a block of its own
            return text[: key.start_mark.index] + block + text[_end_of(value, text) :]
    if text and not text.endswith(("\n", "\r")):
        text += "\r\n" if "\r\n" in text else "\n"
    return text + block


def _end_of(node: yaml.Node, text: str) -> int:
    """Index just past the line that ends `node`'s content (its trailing comment included).

    A block collection's own end mark lies at the next key, past any comment lines after
    its last item; its last item's end does not.
    """
    while isinstance(node, yaml.SequenceNode | yaml.MappingNode) and not node.flow_style:
        if not node.value:  # pragma: no cover - a block collection has at least one item
            break
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    mark = node.end_mark
    if mark.column == 0:  # a block scalar ends with its line break
        return int(mark.index)
    newline = text.find("\n", mark.index)
    return len(text) if newline < 0 else newline + 1


def _loads_as(text: str, wanted: Mapping[str, Any]) -> bool:
    try:
        loaded = load_text(text)
    except ConfigError:
        return False
    return dict(loaded) == dict(wanted)


# --- what the fleet will do -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Impact:
    """What a shift of `az` does, from the document alone."""

    az: str
    checks: int  # checks in the AZ
    records: tuple[str, ...]  # records with an answer in the AZ ("name TYPE")
    ignoring: tuple[str, ...]  # of those, records whose every answer is in a shifted AZ
    shifted: tuple[str, ...]  # every AZ shifted at `now`, this one included


def impact(document: Document, az: str, now: float) -> Impact:
    """Which checks and records a shift of `az` touches, and which records ignore it:
    all their answers are in AZs shifted at `now` (a shift never empties a name)."""
    az_of = {c.slot: c.az for c in document.checks}
    shifted = {s.az for s in document.shifts if s.until > now} | {az}
    touched: list[str] = []
    ignoring: list[str] = []
    for record in document.records:
        answer_azs = [None if a.check is None else az_of.get(a.check) for a in record.answers]
        if az not in answer_azs:
            continue
        label = f"{record.name} {record.type}"
        touched.append(label)
        if all(answer_az in shifted for answer_az in answer_azs):
            ignoring.append(label)
    return Impact(
        az=az,
        checks=sum(1 for c in document.checks if c.az == az),
        records=tuple(touched),
        ignoring=tuple(ignoring),
        shifted=tuple(sorted(shifted)),
    )


def _when(until: float, now: float) -> str:
    if until > now:
        return f"{format_time(until)} (in {format_span(until - now)})"
    return f"{format_time(until)} (expired {format_span(now - until)} ago)"


def _names(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:_LISTED])
    more = len(labels) - _LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _pass(document: Document) -> str:
    interval = document.intervals.config
    return f"at each process's next config pass: within {interval:g}s (intervals.config)"


def describe_start(document: Document, az: str, now: float, replaced: Entry | None) -> list[str]:
    """What `urn shift start` just wrote, and what the fleet will do with it."""
    shift = next(s for s in document.shifts if s.az == az)
    what = impact(document, az, now)
    lines = [f"AZ {az} is shifted until {_when(shift.until, now)}: {shift.reason}"]
    if replaced is not None:
        lines.append(f"  replaces its shift until {replaced['until']} ({replaced['reason']})")
    others = [s for s in document.shifts if s.az != az and s.until > now]
    if others:
        also = ", ".join(f"{s.az} until {format_time(s.until)}" for s in others)
        lines.append(f"  also shifted: {also}")
    lines.append(
        f"  touches {_plural(what.checks, 'check')} and {_plural(len(what.records), 'record')}"
        f" of {len(document.records)}: their answers in AZ {az} count as unhealthy"
    )
    lines.append(f"  takes effect {_pass(document)}")
    if what.ignoring:
        lines.append(
            f"  {_plural(len(what.ignoring), 'record')} will ignore it and keep answering from "
            f"AZ {az}, as all their answers are in shifted AZs ({', '.join(what.shifted)}) and "
            f"a shift never empties a name: {_names(what.ignoring)}"
        )
    else:
        lines.append(
            "  no record has all its answers in shifted AZs (one whose other answers are down "
            "still ignores it, and keeps answering)"
        )
    return lines


def describe_end(document: Document, ended: Entry, now: float) -> list[str]:
    """What `urn shift end` just wrote (`document`: the result), and what the fleet does."""
    az = ended["az"]
    until = parse_time(ended["until"], "shifts")
    if until <= now:
        return [f"AZ {az}'s shift is gone: it had ended at {_when(until, now)}, so nothing changes"]
    what = impact(document, az, now)
    return [
        f"AZ {az} is no longer shifted (the shift had {format_span(until - now)} left, until "
        f"{format_time(until)}: {ended['reason']})",
        f"  its {_plural(what.checks, 'check')} and {_plural(len(what.records), 'record')} answer"
        f" by health again {_pass(document)}",
    ]


def describe_list(document: Document, now: float) -> list[str]:
    """Every shift of the document with its remaining time; expired ones marked."""
    if not document.shifts:
        return ["no shifts"]
    width = max(len(s.az) for s in document.shifts)
    lines = []
    for shift in document.shifts:
        state = (
            f"in {format_span(shift.until - now)}"
            if shift.until > now
            else f"expired {format_span(now - shift.until)} ago (inactive)"
        )
        lines.append(
            f"{shift.az:<{width}}  until {format_time(shift.until)}  {state}  {shift.reason}"
        )
    return lines
