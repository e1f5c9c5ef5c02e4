"""Validate events with the very parser the dispatcher uses.

``genesys_pipeline.events`` (the Lambda asset's domain package, on sys.path via
``import gcpipe``) parses an EventBridge envelope, dict or JSON string, into a
``GenesysEvent`` (whose ``dedup_key`` is the execution name) or raises
``InvalidEvent(reason)``. The CLI calls exactly that, so an event ``gcpipe send``
accepts is one the dispatcher accepts, with the same dedup key.

Until that module lands, ``_interim_parse`` below stands in for it, written
from the envelope facts in the Genesys reference (copied here, since nothing
may read ../shared at run time). It is deliberately not a second source of
truth: ``parser_name()`` says which one is in use, and the interim one goes
away once ``events.py`` exists.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any, Callable

from genesys_pipeline.errors import InvalidEvent
from genesys_pipeline.model import GenesysEvent

Parser = Callable[[Any], GenesysEvent]

# Candidate names of the pipeline's parse function, most likely first.
_PARSER_NAMES = ("parse_event", "parse_envelope", "parse")

# Genesys reference: a partner source is aws.partner/genesys.com/cloud/<orgId>/<suffix>,
# the suffix 1-64 chars of letters, digits, ".", "-", "_".
PARTNER_SOURCE = re.compile(r"^aws\.partner/genesys\.com/cloud/(?P<org>[^/]+)/(?P<suffix>[.\-_A-Za-z0-9]{1,64})$")
SUPPORTED_SCHEMA_VERSIONS = frozenset({"2"})  # detail.version was "2" in every sample seen


def load_parser() -> tuple[Parser, str]:
    """The pipeline's parser and its dotted name, or the interim one."""
    try:
        from genesys_pipeline import events  # noqa: PLC0415 - optional until it lands
    except ImportError:
        return _interim_parse, "gcpipe.ops.validation._interim_parse (genesys_pipeline.events not present)"
    for name in _PARSER_NAMES:
        fn = getattr(events, name, None)
        if callable(fn):
            return fn, f"genesys_pipeline.events.{name}"
    return _interim_parse, "gcpipe.ops.validation._interim_parse (no parser found in genesys_pipeline.events)"


def org_of_source(source: str) -> str | None:
    m = PARTNER_SOURCE.match(source or "")
    return m.group("org") if m else None


def _interim_parse(raw: Any) -> GenesysEvent:
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidEvent(f"invalid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(raw, dict):
        raise InvalidEvent("envelope must be a JSON object")
    for key in ("id", "detail-type", "source"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InvalidEvent(f"missing {key}")
    org = org_of_source(raw["source"])
    if org is None:
        raise InvalidEvent(f"source {raw['source']!r} is not a Genesys partner event source")
    detail = raw.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEvent("missing detail")
    version = detail.get("version")
    if not isinstance(version, str) or not version:
        raise InvalidEvent("missing detail.version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise InvalidEvent(f"unsupported detail.version {version!r} (supported: {', '.join(sorted(SUPPORTED_SCHEMA_VERSIONS))})")
    topic_name = detail.get("topicName")
    if not isinstance(topic_name, str) or not topic_name:
        raise InvalidEvent("missing detail.topicName")
    template = raw["detail-type"]
    if not re.fullmatch(re.escape(template).replace(re.escape("{id}"), r"[^.]+"), topic_name):
        raise InvalidEvent(f"detail.topicName does not match detail-type {template!r}")
    body = detail.get("eventBody")
    if not isinstance(body, dict):
        raise InvalidEvent("missing detail.eventBody")
    conversation_id = body.get("conversationId")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise InvalidEvent("missing detail.eventBody.conversationId")
    event_time = body.get("eventTime")
    if not isinstance(event_time, int) or isinstance(event_time, bool):
        raise InvalidEvent("missing detail.eventBody.eventTime (epoch milliseconds)")
    metadata = detail.get("metadata")
    correlation_id = metadata.get("CorrelationId") if isinstance(metadata, dict) else None
    if not isinstance(correlation_id, str) or not correlation_id:
        raise InvalidEvent("missing detail.metadata.CorrelationId")
    participant_id = body.get("participantId") if isinstance(body.get("participantId"), str) else None
    identity = "|".join((template, correlation_id, str(event_time), conversation_id, participant_id or ""))
    iso_time = datetime.fromtimestamp(event_time / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    return GenesysEvent(
        dedup_key=hashlib.sha256(identity.encode()).hexdigest()[:64],
        event_id=raw["id"],
        source=raw["source"],
        org_id=org,
        topic=template,
        topic_name=topic_name,
        schema_version=version,
        event_time=iso_time.replace("+00:00", "Z"),
        correlation_id=correlation_id,
        conversation_id=conversation_id,
        participant_id=participant_id,
        queue_id=body.get("queueId") if isinstance(body.get("queueId"), str) else None,
    )
