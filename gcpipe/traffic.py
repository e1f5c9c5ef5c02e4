"""Realistic Genesys EventBridge traffic: the event generator of ``gcpipe send --generate``
and of the local runner's traffic mix.

Events are built from the shapes of the Genesys reference samples
(tests/fixtures/events/, copied into ``_BODIES`` below so the package does not
read test files at run time) with fresh ids and times. Envelope facts
(Genesys reference, "The EventBridge envelope"):

* ``source`` is the full partner source name ``aws.partner/genesys.com/cloud/<orgId>/<suffix>``;
* ``detail-type`` is the topic template with ``{id}`` left in, ``detail.topicName``
  the concrete topic;
* ``detail.version`` is ``"2"``; ``eventBody.eventTime`` is epoch milliseconds,
  ``detail.timestamp`` ISO 8601;
* delivery is at-least-once and unordered: a redelivery is the same identity
  (topic, CorrelationId, eventTime, conversation and participant ids) in a new
  envelope (new ``id``), possibly days late.

Every function takes an optional ``random.Random`` so that a seeded run is
reproducible. Malformed variants return what would be on the wire: a dict
when the JSON is well-formed, a ``str`` when it is not.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Sequence

TOPIC_PREFIX = "v2.detail.events.conversation.{id}."
SAMPLE_ORG_ID = "6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SAMPLE_SOURCE_SUFFIX = "contact-center-events"
SAMPLE_QUEUE_ID = "a1b2c3d4-e5f6-4789-9123-4567890abcde"
SAMPLE_ACCOUNT = "123456789012"
SAMPLE_REGION = "us-east-1"

# Short topic name -> body fields beyond conversationId/participantId/eventTime (from the samples).
_BODIES: dict[str, dict[str, Any]] = {
    "acd.end": {
        "sessionId": None,
        "mediaType": "VOICE",
        "provider": "Edge",
        "direction": "INBOUND",
        "ani": "tel:+13175550123",
        "dnis": "tel:+18005550199",
        "queueId": SAMPLE_QUEUE_ID,
        "divisionId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "acdOutcome": "ANSWERED",
        "answeredUserId": "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a",
        "disconnectType": "CLIENT",
        "routingPriority": 0,
        "connectedDurationMs": 184230,
        "flowType": "INBOUNDCALL",
    },
    "customer.end": {
        "sessionId": None,
        "mediaType": "VOICE",
        "provider": "Edge",
        "direction": "INBOUND",
        "externalContactId": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b",
        "interactingDurationMs": 184230,
    },
    # The topic a write-back itself causes: the rule must never route it to the processor.
    "attributes": {"attributes": {"aws_processed": "true"}},
}
DEFAULT_TOPICS = ("acd.end", "customer.end")  # what the pipeline processes; attributes is filtered
_ACD_OUTCOMES = ("ANSWERED", "ANSWERED", "ANSWERED", "ABANDONED", "FLOWOUT")
_MEDIA = ("VOICE", "VOICE", "CHAT", "EMAIL", "CALLBACK")


def topic_template(topic: str) -> str:
    """``acd.end`` -> ``v2.detail.events.conversation.{id}.acd.end`` (a full template passes through)."""
    return topic if topic.startswith("v2.") else TOPIC_PREFIX + topic


def short_topic(template: str) -> str:
    return template[len(TOPIC_PREFIX) :] if template.startswith(TOPIC_PREFIX) else template


def partner_source(org_id: str = SAMPLE_ORG_ID, suffix: str = SAMPLE_SOURCE_SUFFIX) -> str:
    return f"aws.partner/genesys.com/cloud/{org_id}/{suffix}"


def new_id(rng: random.Random | None = None) -> str:
    return str(uuid.UUID(int=(rng or random).getrandbits(128), version=4))


def iso_time(dt: datetime, millis: bool = True) -> str:
    dt = dt.astimezone(timezone.utc)
    return dt.isoformat(timespec="milliseconds" if millis else "seconds").replace("+00:00", "Z")


def make_event(
    topic: str,
    *,
    conversation_id: str | None = None,
    participant_id: str | None = None,
    at: datetime | None = None,
    delivered_at: datetime | None = None,
    queue_id: str | None = None,
    correlation_id: str | None = None,
    source: str | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """One EventBridge envelope of a conversation topic. ``at`` is the event time (default now),
    ``delivered_at`` the envelope time (default ``at``)."""
    rng = rng or random.Random()
    short = short_topic(topic_template(topic))
    template = topic_template(topic)
    at = at or datetime.now(timezone.utc)
    delivered_at = delivered_at or at
    conversation_id = conversation_id or new_id(rng)
    body: dict[str, Any] = {
        "eventTime": int(at.timestamp() * 1000),
        "conversationId": conversation_id,
        "participantId": participant_id or new_id(rng),
    }
    for key, value in copy.deepcopy(_BODIES.get(short, {})).items():
        body[key] = value
    if "sessionId" in body:
        body["sessionId"] = new_id(rng)
    if "mediaType" in body:
        body["mediaType"] = rng.choice(_MEDIA)
    if short in ("acd.start", "acd.end"):
        body["queueId"] = queue_id or SAMPLE_QUEUE_ID
        body["acdOutcome"] = rng.choice(_ACD_OUTCOMES)
        body["connectedDurationMs"] = rng.randint(5_000, 900_000)
        body["ani"] = f"tel:+1317555{rng.randint(0, 9999):04d}"
    elif queue_id is not None:
        body["queueId"] = queue_id
    if short == "customer.end":
        body["interactingDurationMs"] = rng.randint(5_000, 900_000)
        body["externalContactId"] = new_id(rng)
    return {
        "version": "0",
        "id": new_id(rng),
        "detail-type": template,
        "source": source or partner_source(),
        "account": SAMPLE_ACCOUNT,
        "time": iso_time(delivered_at, millis=False),
        "region": SAMPLE_REGION,
        "resources": [],
        "detail": {
            "topicName": template.replace("{id}", conversation_id),
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": correlation_id or new_id(rng)},
            "timestamp": iso_time(at),
        },
    }


def acd_end(**kwargs: Any) -> dict[str, Any]:
    return make_event("acd.end", **kwargs)


def customer_end(**kwargs: Any) -> dict[str, Any]:
    return make_event("customer.end", **kwargs)


def attributes_event(**kwargs: Any) -> dict[str, Any]:
    return make_event("attributes", **kwargs)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def duplicate(event: dict[str, Any], *, rng: random.Random | None = None) -> dict[str, Any]:
    """A redelivery: same identity, new envelope id, keys in a different order."""
    rng = rng or random.Random()
    dup = copy.deepcopy(event)
    dup["id"] = new_id(rng)
    return _shuffled(dup, rng)


def late(event: dict[str, Any], *, by: timedelta) -> dict[str, Any]:
    """The same event delivered ``by`` after it happened (event time moved back; envelope time kept).

    Genesys queues events for up to 4 days while AWS is unreachable; the
    pipeline's max age (default 5 days) decides whether a late event is stale.
    """
    out = copy.deepcopy(event)
    event_ms = out["detail"]["eventBody"]["eventTime"] - int(by.total_seconds() * 1000)
    out["detail"]["eventBody"]["eventTime"] = event_ms
    out["detail"]["timestamp"] = iso_time(datetime.fromtimestamp(event_ms / 1000, tz=timezone.utc))
    return out


# --- malformed variants: each is dead-lettered by the dispatcher and rejected by `gcpipe send` ---


def invalid_json(event: dict[str, Any]) -> str:
    """The event's JSON cut short."""
    text = json.dumps(event)
    return text[: max(1, len(text) // 2)]


def missing_field(
    event: dict[str, Any], path: Sequence[str] = ("detail", "eventBody", "conversationId")
) -> dict[str, Any]:
    out = copy.deepcopy(event)
    node = out
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)
    return out


def wrong_type(event: dict[str, Any]) -> dict[str, Any]:
    """``eventBody.eventTime`` as a string instead of epoch milliseconds."""
    out = copy.deepcopy(event)
    out["detail"]["eventBody"]["eventTime"] = str(out["detail"]["eventBody"]["eventTime"])
    return out


def unsupported_version(event: dict[str, Any], version: str = "99") -> dict[str, Any]:
    out = copy.deepcopy(event)
    out["detail"]["version"] = version
    return out


def wrong_org(event: dict[str, Any], org_id: str | None = None, *, rng: random.Random | None = None) -> dict[str, Any]:
    out = copy.deepcopy(event)
    suffix = out["source"].rsplit("/", 1)[-1]
    out["source"] = partner_source(org_id or new_id(rng), suffix)
    return out


MALFORMED_KINDS = ("invalid_json", "missing_field", "unsupported_version", "wrong_org")


def malformed(event: dict[str, Any], kind: str, *, rng: random.Random | None = None) -> dict[str, Any] | str:
    if kind == "invalid_json":
        return invalid_json(event)
    if kind == "missing_field":
        path = (rng or random).choice(
            [
                ("detail", "eventBody", "conversationId"),
                ("detail", "metadata", "CorrelationId"),
                ("detail-type",),
                ("detail", "topicName"),
            ]
        )
        return missing_field(event, path)
    if kind == "unsupported_version":
        return unsupported_version(event)
    if kind == "wrong_org":
        return wrong_org(event, rng=rng)
    raise ValueError(f"unknown malformed kind {kind!r} (one of {', '.join(MALFORMED_KINDS)})")


# --- streams ---


@dataclass(frozen=True)
class TrafficItem:
    kind: str  # "event", "duplicate", "late", or one of MALFORMED_KINDS
    payload: dict[str, Any] | str

    def line(self) -> str:
        return self.payload if isinstance(self.payload, str) else json.dumps(self.payload, separators=(",", ":"))


def generate(
    n: int,
    *,
    topics: Sequence[str] = DEFAULT_TOPICS,
    queue_ids: Sequence[str] = (SAMPLE_QUEUE_ID,),
    source: str | None = None,
    start: datetime | None = None,
    spread: timedelta = timedelta(minutes=5),
    rng: random.Random | None = None,
) -> Iterator[dict[str, Any]]:
    """``n`` distinct events: conversations ending over the ``spread`` before ``start`` (default now),
    topics cycled over ``topics``, acd.end queue ids drawn from ``queue_ids``."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if not topics:
        raise ValueError("at least one topic")
    rng = rng or random.Random()
    start = start or datetime.now(timezone.utc)
    for i in range(n):
        at = start - timedelta(seconds=rng.uniform(0, spread.total_seconds()))
        yield make_event(
            topics[i % len(topics)],
            at=at,
            queue_id=rng.choice(list(queue_ids)) if queue_ids else None,
            source=source,
            rng=rng,
        )


def mix(
    n: int,
    *,
    duplicates: int = 0,
    malformed_count: int = 0,
    late_count: int = 0,
    late_by: timedelta = timedelta(hours=6),
    rng: random.Random | None = None,
    **generate_kwargs: Any,
) -> list[TrafficItem]:
    """``n`` valid events plus the given numbers of duplicates of them, malformed and late
    variants, shuffled. The ``n`` valid events are distinct; late ones are extra distinct events."""
    rng = rng or random.Random()
    events = list(generate(n + late_count, rng=rng, **generate_kwargs))
    items = [TrafficItem("event", e) for e in events[:n]]
    items += [TrafficItem("late", late(e, by=late_by)) for e in events[n:]]
    if (duplicates or malformed_count) and not items:
        raise ValueError("duplicates and malformed variants need at least one valid event")
    sent = [item.payload for item in items if isinstance(item.payload, dict)]  # all of them: events and late ones
    items += [TrafficItem("duplicate", duplicate(rng.choice(sent), rng=rng)) for _ in range(duplicates)]
    for i in range(malformed_count):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        items.append(TrafficItem(kind, malformed(rng.choice(sent), kind, rng=rng)))
    rng.shuffle(items)
    return items
