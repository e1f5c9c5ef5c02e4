"""EventBridge events in their two shapes, and the conversions between them.

An event comes as an **envelope** (what a target receives: ``version``, ``id``, ``detail-type``,
``source``, ``account``, ``time``, ``region``, ``resources``, ``detail`` as a JSON object) or as a
**PutEvents entry** (what a producer sends: ``Source``, ``DetailType``, ``Detail`` as a JSON string,
``Time``, ``Resources``). The local run reads both from ``--events`` files; the bus route sends
entries; the queue route and the dispatcher see envelopes.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

from . import traffic

Envelope = dict[str, Any]
Entry = dict[str, Any]


def is_entry(obj: dict[str, Any]) -> bool:
    """A PutEvents entry (Source/DetailType/Detail), not an envelope."""
    return "Detail" in obj or "DetailType" in obj


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` or an offset; naive means UTC), None when it is not one."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def entry_problem(obj: Any) -> str | None:
    """Why ``obj`` cannot be put on an event bus (PutPartnerEvents needs Source, DetailType and a JSON-object Detail)."""
    if not isinstance(obj, dict):
        return "not a JSON object (expected an EventBridge event: source, detail-type, detail)"
    entry_form = is_entry(obj)
    source = obj.get("Source" if entry_form else "source")
    detail_type = obj.get("DetailType" if entry_form else "detail-type")
    detail = obj.get("Detail" if entry_form else "detail")
    missing = [n for n, v in (("source", source), ("detail-type", detail_type), ("detail", detail)) if v in (None, "")]
    if missing:
        return f"not an EventBridge event: missing {', '.join(missing)}"
    if not isinstance(source, str) or not isinstance(detail_type, str):
        return "source and detail-type must be strings"
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return "Detail is not JSON"
    if not isinstance(detail, dict):
        return "detail must be a JSON object (EventBridge refuses anything else)"
    t = obj.get("Time" if entry_form else "time")
    if t not in (None, "") and (not isinstance(t, str) or parse_time(t) is None):
        return f"time {t!r} is not an ISO 8601 timestamp"
    return None


def to_envelope(obj: dict[str, Any]) -> Envelope:
    """A PutEvents entry or an envelope -> an envelope (a copy; an entry gets a new id and the sample account)."""
    if not is_entry(obj):
        return copy.deepcopy(obj)
    detail = obj["Detail"]
    return {
        "version": "0",
        "id": obj.get("Id") or traffic.new_id(),
        "detail-type": obj["DetailType"],
        "source": obj["Source"],
        "account": traffic.SAMPLE_ACCOUNT,
        "time": obj.get("Time") or traffic.iso_time(datetime.now(timezone.utc), millis=False),
        "region": traffic.SAMPLE_REGION,
        "resources": obj.get("Resources", []),
        "detail": json.loads(detail) if isinstance(detail, str) else detail,
    }


def to_entry(obj: dict[str, Any], *, default_source: str | None = None) -> Entry:
    """An envelope or a PutEvents entry -> a PutPartnerEvents entry (Detail as a JSON string).

    An envelope's ``time`` is sent as a timestamp; one that does not parse is sent as now, as
    EventBridge stamps an entry without a Time. An entry's ``EventBusName`` is dropped: a
    partner event goes to the bus of its source.
    """
    if is_entry(obj):
        entry = {k: v for k, v in obj.items() if k != "EventBusName"}
    else:
        entry = {
            "Source": obj["source"],
            "DetailType": obj["detail-type"],
            "Detail": obj["detail"],
            "Resources": obj.get("resources") or [],
        }
        if obj.get("time"):
            entry["Time"] = parse_time(obj["time"]) or datetime.now(timezone.utc)
    if default_source is not None:
        entry.setdefault("Source", default_source)
    if not isinstance(entry.get("Detail"), str):
        entry["Detail"] = json.dumps(entry["Detail"])
    return entry


def delivered(envelope: Envelope, event_id: str, account: str, region: str) -> Envelope:
    """The envelope as EventBridge delivers it to a target: the id it assigned, the bus's account and region."""
    out = {k: copy.deepcopy(v) for k, v in envelope.items()}
    out.update({"id": event_id, "account": account, "region": region})
    out.setdefault("version", "0")
    out.setdefault("resources", [])
    return out


__all__ = ["Entry", "Envelope", "delivered", "entry_problem", "is_entry", "parse_time", "to_entry", "to_envelope"]
