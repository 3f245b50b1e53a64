"""DNS names as urn holds them: lower case, absolute, and only what DNS can carry.

Owns: the one normalisation of a name, for config documents (zones, record names) and
for names that arrive over the HTTP API alike, so a record compiles under exactly the
key a query looks up. Never: resolves anything or touches the network.
Cost: O(length of the name).
"""

# urn: pure

from __future__ import annotations

from urn.errors import BadName

__all__ = ["canonical_name"]

MAX_NAME = 253  # characters, without the trailing dot
MAX_LABEL = 63


def canonical_name(text: str) -> str:
    """`text` lower-cased and absolute (trailing dot); BadName says what is wrong.

    A trailing dot is optional, case does not matter, and the root is ".".
    """
    name = text.strip().lower()
    if not name:
        raise BadName("name is empty")
    if name == ".":
        return name
    if not name.endswith("."):
        name += "."
    if len(name) > MAX_NAME + 1:
        raise BadName(f"name is longer than {MAX_NAME} characters")
    if not name.isascii():
        raise BadName("name must be ASCII (use punycode for international names)")
    for label in name[:-1].split("."):
        if not label:
            raise BadName("name has an empty label")
        if len(label) > MAX_LABEL:
            raise BadName(f"name has a label longer than {MAX_LABEL} characters")
        if not label.isprintable() or " " in label or '"' in label or "\\" in label:
            raise BadName("name holds a space, quote, backslash or control character")
    return name
