"""Parsing an EventBridge envelope of a Genesys event into a GenesysEvent, or a precise InvalidEvent."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesys_pipeline.errors import InvalidEvent
from genesys_pipeline.events import NON_SENSITIVE_BODY_FIELDS, SUPPORTED_TOPICS, parse_event
from genesys_pipeline.model import GenesysEvent
from genesys_pipeline.redaction import SENSITIVE_KEYS

ORG = "6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
PREFIX = "v2.detail.events.conversation.{id}."


def _reason(raw, **kwargs) -> str:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw, **kwargs)
    return exc.value.reason


def _as_topic(envelope: dict, short: str) -> dict:
    out = copy.deepcopy(envelope)
    out["detail-type"] = PREFIX + short
    out["detail"]["topicName"] = (PREFIX + short).replace("{id}", out["detail"]["eventBody"]["conversationId"])
    return out


# ---------------------------------------------------------------- the samples


@pytest.mark.parametrize("name", ["acd-end", "customer-end", "attributes"])
def test_every_sample_parses_from_its_sqs_body(sample_events, name):
    # Given a sample envelope as the SQS message body (a JSON string)
    envelope = sample_events[name]
    # When it is parsed for its own org
    event = parse_event(json.dumps(envelope), org_id=ORG)
    # Then identity and routing fields come from the envelope
    body = envelope["detail"]["eventBody"]
    assert event.topic == envelope["detail-type"]
    assert event.topic_name == envelope["detail"]["topicName"]
    assert event.conversation_id == body["conversationId"]
    assert event.participant_id == body["participantId"]
    assert event.correlation_id == envelope["detail"]["metadata"]["CorrelationId"]
    assert event.org_id == ORG and event.event_id == envelope["id"] and event.schema_version == "2"


def test_acd_end_carries_its_queue_and_a_millisecond_utc_event_time(sample_events):
    event = parse_event(sample_events["acd-end"])
    assert event.queue_id == "a1b2c3d4-e5f6-4789-9123-4567890abcde"
    # eventTime 1763900000123 ms
    assert event.event_time == "2025-11-23T12:13:20.123Z"


def test_bytes_and_decoded_envelopes_parse_alike(sample_events):
    envelope = sample_events["customer-end"]
    assert parse_event(json.dumps(envelope).encode()) == parse_event(envelope) == parse_event(json.dumps(envelope))


@pytest.mark.parametrize("name", ["acd-end", "customer-end"])
def test_fields_never_carry_customer_identifiers(sample_events, name):
    # Given samples that carry ani, dnis and externalContactId
    envelope = sample_events[name]
    # When parsed
    event = parse_event(envelope)
    # Then the execution input holds none of them, nor their values
    text = json.dumps(event.to_execution_input())
    for key in ("ani", "dnis", "externalContactId"):
        assert key not in event.fields
        value = envelope["detail"]["eventBody"].get(key)
        if value:
            assert value not in text
    assert event.fields["mediaType"] == "VOICE"


def test_attribute_values_are_not_carried(sample_events):
    # attributes is free-form participant data: it may hold anything a flow wrote
    event = parse_event(sample_events["attributes"])
    assert "attributes" not in event.fields


def test_the_body_allowlist_holds_no_sensitive_key_and_covers_the_processor_placeholders():
    from genesys_pipeline.processing import KNOWN_EVENT_FIELDS

    assert not {f.lower() for f in NON_SENSITIVE_BODY_FIELDS} & SENSITIVE_KEYS
    assert KNOWN_EVENT_FIELDS <= NON_SENSITIVE_BODY_FIELDS


def test_every_documented_conversation_topic_is_supported(sample_events):
    shorts = [
        "acd.start",
        "acd.end",
        "acw",
        "attributes",
        "customer.start",
        "customer.end",
        "flow.start",
        "flow.end",
        "outbound",
        "user.start",
        "user.end",
        "voicemail.start",
        "voicemail.end",
    ]
    assert set(SUPPORTED_TOPICS) == {PREFIX + s for s in shorts}
    for short in shorts:
        assert parse_event(_as_topic(sample_events["acd-end"], short)).topic == PREFIX + short


# ---------------------------------------------------------------- rejections, each with its reason


def test_wrong_org_is_rejected_naming_the_org(sample_events):
    reason = _reason(sample_events["acd-end"], org_id="11111111-2222-3333-4444-555555555555")
    assert reason.startswith("source 'aws.partner/genesys.com/cloud/6f3b2f0e")
    assert reason.endswith(
        "belongs to org 6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b, not the configured org 11111111-2222-3333-4444-555555555555"
    )


@pytest.mark.parametrize(
    "source",
    [
        "aws.partner/genesys.com/cloud/org",  # no suffix
        "aws.partner/genesys.com/cloud/org/" + "x" * 65,  # suffix longer than 64
        "aws.partner/genesys.com/cloud/org/bad suffix",
        "aws.partner/example.com/cloud/org/suffix",
        "com.genesyscloud",  # the seeds' fictional source
    ],
)
def test_a_source_that_is_not_a_genesys_partner_source_is_rejected(sample_events, source):
    envelope = sample_events["acd-end"]
    envelope["source"] = source
    assert "is not a Genesys partner event source" in _reason(envelope)


def test_a_64_char_suffix_is_accepted(sample_events):
    envelope = sample_events["acd-end"]
    envelope["source"] = f"aws.partner/genesys.com/cloud/{ORG}/" + "a.b-c_" * 10 + "abcd"
    assert parse_event(envelope, org_id=ORG).org_id == ORG


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["detail"]["eventBody"].pop("conversationId"), "missing detail.eventBody.conversationId"),
        (lambda e: e["detail"]["eventBody"].pop("eventTime"), "missing detail.eventBody.eventTime"),
        (
            lambda e: e["detail"]["eventBody"].update(eventTime="2026-11-23T12:13:20Z"),
            "detail.eventBody.eventTime must be epoch milliseconds (int)",
        ),
        (
            lambda e: e["detail"]["eventBody"].update(eventTime=True),
            "detail.eventBody.eventTime must be epoch milliseconds (int)",
        ),
        (
            lambda e: e["detail"]["eventBody"].update(eventTime=1.5e12),
            "detail.eventBody.eventTime must be epoch milliseconds (int)",
        ),
        (
            lambda e: e["detail"]["eventBody"].update(eventTime=10**20),
            "detail.eventBody.eventTime must be epoch milliseconds (int)",
        ),
        (lambda e: e["detail"]["eventBody"].pop("queueId"), "missing detail.eventBody.queueId"),
        (lambda e: e["detail"]["eventBody"].pop("participantId"), "missing detail.eventBody.participantId"),
        (
            lambda e: e["detail"]["eventBody"].update(participantId=7),
            "detail.eventBody.participantId must be a Genesys id (letters, digits and '-')",
        ),
        (lambda e: e["detail"]["metadata"].pop("CorrelationId"), "missing detail.metadata.CorrelationId"),
        (lambda e: e["detail"].pop("metadata"), "missing detail.metadata"),
        (lambda e: e["detail"].pop("eventBody"), "missing detail.eventBody"),
        (lambda e: e["detail"].update(eventBody=[]), "detail.eventBody must be a JSON object"),
        (lambda e: e["detail"].pop("version"), "missing detail.version"),
        (lambda e: e["detail"].update(version=2), "detail.version must be a non-empty string"),
        (lambda e: e["detail"].update(version="99"), "unsupported schema version '99' (supported: 1, 2)"),
        (lambda e: e["detail"].pop("topicName"), "missing detail.topicName"),
        (lambda e: e.pop("detail-type"), "missing detail-type"),
        (lambda e: e.pop("detail"), "missing detail"),
        (lambda e: e.pop("id"), "missing id"),
        (lambda e: e.pop("source"), "missing source"),
        (
            lambda e: e.update({"detail-type": "v2.users.{id}.routingStatus"}),
            "unsupported topic 'v2.users.{id}.routingStatus'",
        ),
    ],
)
def test_each_defect_is_rejected_with_a_precise_reason(sample_events, mutate, reason):
    # Given a valid acd.end envelope with one defect
    envelope = sample_events["acd-end"]
    mutate(envelope)
    # Then the rejection says exactly what is wrong
    assert _reason(envelope) == reason


def test_topic_name_must_be_the_template_filled_with_the_conversation_id(sample_events):
    envelope = sample_events["acd-end"]
    envelope["detail"]["topicName"] = "v2.detail.events.conversation.ffffffff-0000-0000-0000-000000000000.acd.end"
    assert _reason(envelope).startswith("detail.topicName 'v2.detail.events.conversation.ffffffff")
    envelope = sample_events["acd-end"]
    envelope["detail-type"] = PREFIX + "customer.end"  # template of another topic than the concrete one
    assert "does not match detail-type v2.detail.events.conversation.{id}.customer.end" in _reason(envelope)


@pytest.mark.parametrize("short", sorted(s.removeprefix(PREFIX) for s in SUPPORTED_TOPICS))
def test_every_topic_needs_a_participant(sample_events, short):
    # Given any supported topic (attributes too: participant attributes need the participant)
    envelope = _as_topic(sample_events["acd-end"], short)
    # When its body lacks participantId
    del envelope["detail"]["eventBody"]["participantId"]
    # Then it is rejected for exactly that
    assert _reason(envelope) == "missing detail.eventBody.participantId"


@pytest.mark.parametrize(
    ("short", "needs_queue"), [("acd.start", True), ("acd.end", True), ("customer.end", False), ("acw", False)]
)
def test_only_the_acd_topics_need_a_queue(sample_events, short, needs_queue):
    envelope = _as_topic(sample_events["acd-end"], short)
    del envelope["detail"]["eventBody"]["queueId"]
    if needs_queue:
        assert _reason(envelope) == "missing detail.eventBody.queueId"
    else:
        assert parse_event(envelope).queue_id is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"version": "0", "id": ', "body is not valid JSON: Expecting value at line 1 column 24"),
        (b"\xff\xfe{}", "body is not UTF-8 text (byte 0)"),
        ("[1, 2]", "envelope must be a JSON object, got an array"),
        ("null", "envelope must be a JSON object, got null"),
        ("", "body is not valid JSON: Expecting value at line 1 column 1"),
        ("[" * 100_000, "body is not valid JSON: nested too deeply"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_rejected(raw, reason):
    assert _reason(raw) == reason


# ---------------------------------------------------------------- properties: only GenesysEvent or InvalidEvent

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _parses_or_rejects(raw) -> None:
    try:
        result = parse_event(raw)
    except InvalidEvent as exc:
        assert isinstance(exc.reason, str) and exc.reason and exc.reason != "invalid"
    else:
        assert isinstance(result, GenesysEvent)
        json.dumps(result.to_execution_input(), allow_nan=False)  # always a valid execution input


@given(JSON)
def test_any_json_value_yields_an_event_or_invalid_event(value):
    _parses_or_rejects(value)
    _parses_or_rejects(json.dumps(value))


@given(st.binary(max_size=300))
def test_any_bytes_yield_an_event_or_invalid_event(data):
    _parses_or_rejects(data)


@given(st.text(max_size=300))
def test_any_text_yields_an_event_or_invalid_event(text):
    _parses_or_rejects(text)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))


@st.composite
def mutated_events(draw):
    from tests.conftest import SAMPLE_EVENTS

    envelope = copy.deepcopy(SAMPLE_EVENTS[draw(st.sampled_from(sorted(SAMPLE_EVENTS)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(envelope) if p]
        path = draw(st.sampled_from(paths))
        parent = envelope
        for key in path[:-1]:
            parent = parent[key]
        kind = draw(st.sampled_from(["delete", "retype", "replace"]))
        if kind == "delete":
            del parent[path[-1]]
        elif kind == "retype":
            old = parent[path[-1]]
            parent[path[-1]] = draw(st.sampled_from([str(old), [old], {"v": old}, None, 0, -1, True, 1.5]))
        else:
            parent[path[-1]] = draw(JSON)
    return envelope


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events())
def test_mutated_valid_events_yield_an_event_or_invalid_event(envelope):
    _parses_or_rejects(envelope)
    _parses_or_rejects(json.dumps(envelope))
    try:
        parse_event(envelope, org_id=ORG)
    except InvalidEvent:
        pass
