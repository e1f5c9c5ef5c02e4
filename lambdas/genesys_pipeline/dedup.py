"""The dedup key: one event's identity, usable as a Step Functions execution name.

Identity is what stays the same when Genesys or EventBridge redeliver an event:
topic, ``metadata.CorrelationId``, event time, conversation and participant ids.
The envelope ``id`` is not part of it: a redelivery gets a new one.

Step Functions execution names: at most 80 characters; this key uses only
``[A-Za-z0-9_-]`` (safe for names, log groups and X-Ray). A Standard machine
refuses a second execution with the same name for 90 days, which is the
dispatcher's first dedup layer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import NewType

from .topics import TOPIC_PREFIX

DedupKey = NewType("DedupKey", str)

MAX_LENGTH = 80  # Step Functions execution name limit
DEDUP_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# 40 hex chars = 160 bits of sha256: collisions are out of reach at any event volume,
# and the readable prefix still fits beside it.
HASH_HEX_CHARS = 40
_PREFIX_MAX = MAX_LENGTH - HASH_HEX_CHARS - 1
_CONVERSATION_PREFIX_CHARS = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class EventIdentity:
    topic: str  # topic template, {id} left in
    correlation_id: str
    event_time_ms: int  # eventBody.eventTime, epoch milliseconds
    conversation_id: str
    participant_id: str | None

    def dedup_key(self) -> DedupKey:
        # A JSON array is an unambiguous encoding (no separator can be forged inside a field);
        # "k1" versions the scheme so that a change of recipe can never reuse old names.
        canonical = json.dumps(
            [
                "k1",
                self.topic,
                self.correlation_id,
                self.event_time_ms,
                self.conversation_id,
                self.participant_id or "",
            ],
            separators=(",", ":"),
        )
        digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:HASH_HEX_CHARS]
        return DedupKey(f"{self._readable_prefix()}-{digest}")

    def _readable_prefix(self) -> str:
        short = self.topic[len(TOPIC_PREFIX) :] if self.topic.startswith(TOPIC_PREFIX) else self.topic
        short = _UNSAFE.sub("-", short).strip("-") or "event"
        conversation = _UNSAFE.sub("", self.conversation_id)[:_CONVERSATION_PREFIX_CHARS] or "x"
        return f"{short[: _PREFIX_MAX - len(conversation) - 1]}-{conversation}"


def dedup_key(
    *, topic: str, correlation_id: str, event_time_ms: int, conversation_id: str, participant_id: str | None
) -> DedupKey:
    """The key of one event identity (``parse_event`` sets it on every ``GenesysEvent``)."""
    return EventIdentity(topic, correlation_id, event_time_ms, conversation_id, participant_id).dedup_key()


def is_dedup_key(value: object) -> bool:
    return isinstance(value, str) and DEDUP_KEY_PATTERN.match(value) is not None
