"""The normalized Genesys event: what the dispatcher hands to Step Functions.

It is compact on purpose. The execution input is visible in the Step Functions
console and history, so it carries identity and routing fields only, never the
customer identifiers (``ani``, ``dnis``, ``externalContactId``) of the body.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field
from typing import Any

from .errors import InvalidEvent


@dataclass(frozen=True)
class GenesysEvent:
    dedup_key: str  # execution name; see dedup.py
    event_id: str  # envelope "id" (differs across redeliveries; not identity)
    source: str  # aws.partner/genesys.com/cloud/<orgId>/<suffix>
    org_id: str
    topic: str  # topic template, e.g. v2.detail.events.conversation.{id}.acd.end
    topic_name: str  # concrete topic
    schema_version: str  # detail.version after migration
    event_time: str  # ISO 8601 UTC with milliseconds, from eventBody.eventTime
    correlation_id: str
    conversation_id: str
    participant_id: str | None
    queue_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # non-sensitive body fields, for attribute templates

    def to_execution_input(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}

    @classmethod
    def from_execution_input(cls, data: Any) -> "GenesysEvent":
        if not isinstance(data, dict):
            raise InvalidEvent("execution input must be a JSON object")
        kwargs = {}
        for name, f in cls.__dataclass_fields__.items():
            key = _camel(name)
            if key in data:
                kwargs[name] = data[key]
            elif f.default is MISSING and f.default_factory is MISSING:
                raise InvalidEvent(f"missing execution input field {key}")
        for required in ("dedup_key", "conversation_id", "topic"):
            if not isinstance(kwargs[required], str) or not kwargs[required]:
                raise InvalidEvent(f"execution input field {_camel(required)} must be a non-empty string")
        return cls(**kwargs)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
