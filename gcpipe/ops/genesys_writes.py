"""``gcpipe --local genesys writes``: what the local stack wrote to (simulated) Genesys.

The simulator records every write and serves the record at ``GET /sim/writes``
on its loopback server, outside the ``/api/v2`` namespace Genesys has (see
``gcpipe/simulator/server.py``). Here the record is grouped by where it went:
one row per conversation and participant and kind of write, with how many
times, when last, and the last values written. The writes carry only the
attributes the environment configures, no customer data; everything still
goes through the pipeline's redaction before it is shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import requests

from genesys_pipeline.redaction import redact

from .errors import NotSupportedOnTarget, OperatorError
from .target import Target

WRITES_PATH = "/sim/writes"


@dataclass
class WrittenPlace:
    """Every write to one conversation/participant of one kind."""

    conversation_id: str | None
    participant_id: str | None
    kind: str  # "participant attributes", "external tag", "integration config"
    count: int = 0
    first: str | None = None
    last: str | None = None
    last_values: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def fetch_writes(target: Target, conversation_id: str | None = None, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The simulator's record of writes (local stack only), redacted."""
    if not target.is_local:
        raise NotSupportedOnTarget(
            "genesys writes reads the local Genesys simulator: use it with --local "
            "(on AWS, Genesys itself holds what was written)"
        )
    if not target.genesys_base_url:
        raise OperatorError(
            "the local state file names no Genesys simulator (genesys_base_url): "
            "start the stack with `gcpipe local run --keep-running`"
        )
    params = {"conversationId": conversation_id} if conversation_id else None
    try:
        response = requests.get(target.genesys_base_url.rstrip("/") + WRITES_PATH, params=params, timeout=timeout)
    except requests.ConnectionError:
        raise OperatorError(
            f"the Genesys simulator at {target.genesys_base_url} is not answering: is the local stack still running?"
        ) from None
    if response.status_code != 200:
        raise OperatorError(f"the Genesys simulator answered {response.status_code} to GET {WRITES_PATH}")
    return [redact(w) for w in response.json().get("writes", [])]


def _iso(seconds: Any) -> str | None:
    if not isinstance(seconds, (int, float)):
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _values(write: dict[str, Any]) -> dict[str, Any]:
    if write.get("kind") == "participant attributes":
        return dict(write.get("attributes") or {})
    if write.get("kind") == "external tag":
        return {"externalTag": write.get("external_tag")}
    return {"version": write.get("version")}


def by_place(writes: list[dict[str, Any]]) -> list[WrittenPlace]:
    """Group writes by (conversation, participant, kind), in order of first write."""
    places: dict[tuple[Any, Any, Any], WrittenPlace] = {}
    for w in writes:
        key: tuple[Any, Any, Any] = (w.get("conversation_id"), w.get("participant_id"), w.get("kind"))
        place = places.get(key)
        if place is None:
            place = places[key] = WrittenPlace(*key, first=_iso(w.get("time")))
        place.count += 1
        place.last = _iso(w.get("time"))
        place.last_values = {**place.last_values, **_values(w)}  # attribute PATCHes merge, as in Genesys
    return list(places.values())
