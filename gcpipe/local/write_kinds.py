"""Why the number of Genesys writes differs from the number of applied events, said beside it.

The processor writes each applied event's configured attributes once (and its
external tag, when one is configured); the error logger marks a failed
conversation with its status attribute (``markFailedConversations``); an
integration config write is ``gcpipe genesys sync-filter --apply``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

WRITE_BACK, EXTERNAL_TAG, FAILURE_MARK, CONFIG = "write-back", "external tag", "failure mark", "integration config"


def kind_of(write: Mapping[str, Any], attribute_keys: Iterable[str]) -> str:
    """``write``: method, path, body as the simulator recorded it."""
    path = str(write.get("path") or "")
    raw_body = write.get("body")
    body = raw_body if isinstance(raw_body, dict) else {}
    if path.endswith("/tags"):
        return EXTERNAL_TAG
    if "/integrations/" in path:
        return CONFIG
    if set(body.get("attributes") or {}) & set(attribute_keys):
        return WRITE_BACK
    return FAILURE_MARK


def explain(writes: list[Mapping[str, Any]], attribute_keys: Iterable[str], applied: int) -> str:
    """``41 (40 write-backs, one per applied event; 1 failure mark by the error logger)``."""
    keys = list(attribute_keys)
    counts = Counter(kind_of(w, keys) for w in writes)
    parts = []
    if counts[WRITE_BACK] or applied:
        note = "one per applied event" if counts[WRITE_BACK] == applied else f"for {applied} applied event(s)"
        parts.append(f"{counts[WRITE_BACK]} write-back(s), {note}")
    if counts[EXTERNAL_TAG]:
        parts.append(f"{counts[EXTERNAL_TAG]} external tag(s) by the processor")
    if counts[FAILURE_MARK]:
        parts.append(f"{counts[FAILURE_MARK]} failure mark(s) by the error logger (failed executions)")
    if counts[CONFIG]:
        parts.append(f"{counts[CONFIG]} integration config write(s)")
    return f"{len(writes)} ({'; '.join(parts)})" if parts else str(len(writes))


__all__ = ["explain", "kind_of"]
