"""The configuration document: parsed and validated whole, into frozen dataclasses.

One way in: `parse_text` (YAML or JSON text to a Document) is `load` then `validate`;
`parse_document` validates an already-loaded mapping. `model` holds the dataclasses,
`fields` the typed field reader, `load` the parsers, `validate` the document's rules,
`levers` the operator levers' fields and their expiries.
Never: reads files, URLs, environment variables or clocks (`now` is passed in);
`urn.source` does the fetching, and key material is resolved by the services.
Cost: O(size of document); runs once per config pass, never on a hot path.
"""

from __future__ import annotations

from urn.config import model
from urn.config.load import load_text
from urn.config.model import *  # noqa: F403 - the package is the model's public face
from urn.config.validate import normalize_name, parse_document

__all__ = [*model.__all__, "normalize_name", "parse_document", "parse_text"]


def parse_text(
    text: str | bytes, origin: str = "config", now: float | None = None
) -> model.Document:
    """Parse a YAML or JSON document and validate it; ConfigError names what is wrong.

    A key repeated in one mapping is an error in YAML and JSON alike, never a silent
    last-wins (urn.config.load). `now`: the wall time levers' expiries are judged
    against (`parse_document`).
    """
    return parse_document(load_text(text, origin), now)
