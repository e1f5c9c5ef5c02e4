"""Parse and validate one EventBridge envelope of a Genesys Cloud event into a ``GenesysEvent``.

``parse_event`` is the one parser: the dispatcher calls it on every SQS message
body, and ``gcpipe send`` on every event it sends. It returns a
``GenesysEvent`` or raises ``InvalidEvent(reason)``, and nothing else, whatever
the input (tested with Hypothesis on arbitrary bytes, JSON and mutated events).

Envelope facts (team Genesys reference):
- ``source`` is ``aws.partner/genesys.com/cloud/<orgId>/<suffix>``, the suffix
  1-64 characters of letters, digits, ``.``, ``-``, ``_``;
- ``detail-type`` is the topic template with ``{id}`` left in, and
  ``detail.topicName`` the concrete topic, the conversation id filled in;
- ``detail.version`` is "2"; older shapes are migrated (migrations.py);
- ``eventBody.eventTime`` is epoch milliseconds.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from .dedup import EventIdentity
from .errors import InvalidEvent
from .migrations import migrate
from .model import GenesysEvent
from .topics import SUPPORTED_TOPICS

PARTNER_SOURCE = re.compile(
    r"^aws\.partner/genesys\.com/cloud/(?P<org>[.\-_A-Za-z0-9]+)/(?P<suffix>[.\-_A-Za-z0-9]{1,64})$"
)
# Genesys object ids are UUIDs; letters, digits and "-" also keep an id from breaking
# the dotted topicName apart.
GENESYS_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_CORRELATION_ID_LENGTH = 256
# Epoch ms from 1970 to the end of year 9999: what a datetime can hold.
_MAX_EPOCH_MS = 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# eventBody fields copied into GenesysEvent.fields: an allowlist, because the execution
# input is visible in the Step Functions console and unknown fields may be customer data
# (ani, dnis, externalContactId, attribute values). Scalars only.
NON_SENSITIVE_BODY_FIELDS = frozenset(
    {
        "mediaType",
        "provider",
        "direction",
        "sessionId",
        "divisionId",
        "acdOutcome",
        "answeredUserId",
        "disconnectType",
        "routingPriority",
        "connectedDurationMs",
        "flowType",
        "interactingDurationMs",
        "queueId",
        "userId",
        "wrapupCode",
        "wrapupDurationMs",
        "flowId",
        "flowVersion",
        "exitReason",
        "transferType",
        "outboundCampaignId",
        "outboundContactListId",
        "voicemailDurationMs",
        "alertingDurationMs",
    }
)


def parse_event(raw: Any, *, org_id: str | None = None) -> GenesysEvent:
    """An SQS message body (str/bytes) or an already decoded envelope (dict) -> ``GenesysEvent``.

    ``org_id``: when given, an event from another Genesys org is rejected.
    Raises ``InvalidEvent`` with a precise reason, and no other exception.
    """
    envelope = _decode(raw)
    source = _required_str(envelope, "source", "source")
    match = PARTNER_SOURCE.match(source)
    if match is None:
        raise InvalidEvent(
            f"source {_show(source)} is not a Genesys partner event source "
            "(aws.partner/genesys.com/cloud/<orgId>/<suffix>)"
        )
    source_org = match.group("org")
    if org_id is not None and source_org != org_id:
        raise InvalidEvent(f"source {_show(source)} belongs to org {source_org}, not the configured org {org_id}")
    event_id = _required_str(envelope, "id", "id")
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEvent("missing detail" if detail is None else "detail must be a JSON object")
    version = detail.get("version")
    if not isinstance(version, str) or not version:
        raise InvalidEvent("missing detail.version" if version is None else "detail.version must be a non-empty string")
    detail = migrate(detail, version)

    template = _required_str(envelope, "detail-type", "detail-type")
    spec = SUPPORTED_TOPICS.get(template)
    if spec is None:
        raise InvalidEvent(f"unsupported topic {_show(template)}")
    body = detail.get("eventBody")
    if not isinstance(body, dict):
        raise InvalidEvent("missing detail.eventBody" if body is None else "detail.eventBody must be a JSON object")
    conversation_id = _required_genesys_id(body, "conversationId")
    topic_name = _required_str(detail, "topicName", "detail.topicName")
    expected_topic_name = template.replace("{id}", conversation_id)
    if topic_name != expected_topic_name:
        raise InvalidEvent(
            f"detail.topicName {_show(topic_name)} does not match detail-type {template} "
            f"for conversation {conversation_id}"
        )
    event_time_ms = body.get("eventTime")
    if isinstance(event_time_ms, bool) or not isinstance(event_time_ms, int) or not 0 <= event_time_ms <= _MAX_EPOCH_MS:
        raise InvalidEvent(
            "missing detail.eventBody.eventTime"
            if event_time_ms is None
            else "detail.eventBody.eventTime must be epoch milliseconds (int)"
        )
    participant_id = _genesys_id(body, "participantId", required=spec.participant_level)
    queue_id = _genesys_id(body, "queueId", required=spec.requires_queue)
    metadata = detail.get("metadata")
    if not isinstance(metadata, dict):
        raise InvalidEvent("missing detail.metadata" if metadata is None else "detail.metadata must be a JSON object")
    correlation_id = _required_str(metadata, "CorrelationId", "detail.metadata.CorrelationId")
    if len(correlation_id) > MAX_CORRELATION_ID_LENGTH:
        raise InvalidEvent(f"detail.metadata.CorrelationId is longer than {MAX_CORRELATION_ID_LENGTH} characters")

    identity = EventIdentity(
        topic=template,
        correlation_id=correlation_id,
        event_time_ms=event_time_ms,
        conversation_id=conversation_id,
        participant_id=participant_id,
    )
    return GenesysEvent(
        dedup_key=identity.dedup_key(),
        event_id=event_id,
        source=source,
        org_id=source_org,
        topic=template,
        topic_name=topic_name,
        schema_version=detail["version"],
        event_time=iso_millis(event_time_ms),
        correlation_id=correlation_id,
        conversation_id=conversation_id,
        participant_id=participant_id,
        queue_id=queue_id,
        fields={k: v for k, v in body.items() if k in NON_SENSITIVE_BODY_FIELDS and _is_json_scalar(v)},
    )


def iso_millis(epoch_ms: int) -> str:
    """1763900000123 -> "2025-11-23T12:13:20.123Z"."""
    return (_EPOCH + timedelta(milliseconds=epoch_ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_time_of(event: GenesysEvent) -> datetime:
    return datetime.fromisoformat(event.event_time)


def _decode(raw: Any) -> dict[str, Any]:
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"body is not UTF-8 text (byte {exc.start})") from None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidEvent(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise InvalidEvent("body is not valid JSON: nested too deeply") from None
        except ValueError as exc:  # e.g. an integer beyond Python's int/str digit limit
            raise InvalidEvent(f"body is not valid JSON: {_show(str(exc))}") from None
    if not isinstance(raw, dict):
        raise InvalidEvent(f"envelope must be a JSON object, got {_json_type(raw)}")
    return raw


def _required_str(container: Mapping[str, Any], key: str, path: str) -> str:
    value = container.get(key)
    if value is None:
        raise InvalidEvent(f"missing {path}")
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{path} must be a non-empty string")
    return value


def _required_genesys_id(body: Mapping[str, Any], key: str) -> str:
    value = _genesys_id(body, key, required=True)
    assert value is not None  # required: _genesys_id raised
    return value


def _genesys_id(body: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidEvent(f"missing detail.eventBody.{key}")
        return None
    if not isinstance(value, str) or not GENESYS_ID.match(value):
        raise InvalidEvent(f"detail.eventBody.{key} must be a Genesys id (letters, digits and '-')")
    return value


def _is_json_scalar(value: Any) -> bool:
    # NaN/Infinity would make the execution input invalid JSON for Step Functions.
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _show(value: Any) -> str:
    # ascii(): a reason becomes an SQS message attribute, which refuses some characters.
    text = ascii(value)
    return text if len(text) <= 120 else text[:117] + "..."
