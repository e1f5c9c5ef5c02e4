"""Schema versions of ``detail``: a small registry of migrations to the current shape.

Real Genesys Cloud sends ``detail.version == "2"`` (every sample seen, see the
team's Genesys reference). Version "1" below is a **modeled legacy shape**, not
a documented Genesys one: it stands for the kind of drift a parser must absorb
(``eventBody.eventTime`` as an ISO-8601 string instead of epoch milliseconds,
``metadata.correlationId`` spelled in camelCase). When Genesys publishes a real
new version, add its migration here with a test, the same way.

A version that has no migration is never guessed at: the caller rejects it with
"unsupported schema version ...". Migrations work on a copy and raise only
``InvalidEvent``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from .errors import InvalidEvent

CURRENT_SCHEMA_VERSION = "2"


@dataclass(frozen=True)
class Migration:
    source: str  # detail.version it reads
    target: str  # detail.version it produces
    upgrade: Callable[[dict[str, Any]], dict[str, Any]]  # detail -> detail (a copy; may raise InvalidEvent)
    summary: str


def _v1_to_v2(detail: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(detail)
    body = out.get("eventBody")
    if isinstance(body, dict) and isinstance(body.get("eventTime"), str):
        body["eventTime"] = _iso_to_epoch_ms(body["eventTime"])
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and "CorrelationId" not in metadata and "correlationId" in metadata:
        metadata["CorrelationId"] = metadata.pop("correlationId")
    out["version"] = "2"
    return out


def _iso_to_epoch_ms(text: str) -> int:
    try:
        # fromisoformat accepts "Z" from Python 3.11 on.
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            raise InvalidEvent("detail.eventBody.eventTime must carry a UTC offset in schema version 1")
        delta = parsed.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: an offset pushes year 1 or 9999 out of range
        raise InvalidEvent("detail.eventBody.eventTime must be an ISO-8601 timestamp in schema version 1") from None
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


MIGRATIONS: Mapping[str, Migration] = {
    "1": Migration(
        "1",
        "2",
        _v1_to_v2,
        "modeled legacy shape: eventTime as ISO-8601 string, metadata.correlationId -> metadata.CorrelationId",
    ),
}


def supported_versions() -> list[str]:
    return sorted({CURRENT_SCHEMA_VERSION, *MIGRATIONS})


def migrate(detail: dict[str, Any], version: str) -> dict[str, Any]:
    """``detail`` of schema ``version`` in the current shape (``detail`` itself when already current)."""
    seen = set()
    while version != CURRENT_SCHEMA_VERSION:
        migration = MIGRATIONS.get(version)
        if migration is None or version in seen:
            raise InvalidEvent(
                f"unsupported schema version {_show(version)} (supported: {', '.join(supported_versions())})"
            )
        seen.add(version)
        detail = migration.upgrade(detail)
        version = migration.target
    return detail


def _show(value: Any) -> str:
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."
