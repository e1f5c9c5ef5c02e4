"""Validate events with the very parser the dispatcher uses.

``genesys_pipeline.events`` (the Lambda asset's domain package, installed with
gcpipe: pyproject.toml maps it from ``lambdas/``) parses an EventBridge envelope, dict or JSON string, into a
``GenesysEvent`` (whose ``dedup_key`` is the execution name) or raises
``InvalidEvent(reason)``. The CLI calls exactly that, so an event ``gcpipe send``
accepts is one the dispatcher accepts, with the same dedup key.
"""

from __future__ import annotations

from typing import Any, Callable

from genesys_pipeline.events import PARTNER_SOURCE, parse_event
from genesys_pipeline.model import GenesysEvent

Parser = Callable[[Any], GenesysEvent]


def load_parser() -> tuple[Parser, str]:
    """The pipeline's parser and its dotted name (printed by ``send``)."""
    return parse_event, "genesys_pipeline.events.parse_event"


def org_of_source(source: str) -> str | None:
    m = PARTNER_SOURCE.match(source or "")
    return m.group("org") if m else None
