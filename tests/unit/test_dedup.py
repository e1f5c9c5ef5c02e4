"""The dedup key: the same event always gets the same execution name, different events different ones."""

from __future__ import annotations

import copy
import json
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genesys_pipeline.dedup import EventIdentity, dedup_key, is_dedup_key
from genesys_pipeline.events import parse_event

NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _shuffled(node, rng: random.Random):
    """The same JSON with every object's keys in another order."""
    if isinstance(node, dict):
        items = list(node.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(node, list):
        return [_shuffled(v, rng) for v in node]
    return node


@pytest.mark.parametrize("name", ["acd-end", "customer-end", "attributes"])
def test_a_sample_key_is_a_readable_execution_name(sample_events, name):
    key = parse_event(sample_events[name]).dedup_key
    assert NAME.match(key)
    short = sample_events[name]["detail-type"].rsplit("}.", 1)[1].replace(".", "-")
    assert key.startswith(f"{short}-2f7bf00a-")
    assert len(key.rsplit("-", 1)[1]) == 40  # sha256 hex


@given(
    seed=st.integers(0, 2**32), envelope_id=st.uuids(), name=st.sampled_from(["acd-end", "customer-end", "attributes"])
)
def test_a_redelivery_gets_the_same_key_whatever_its_envelope_id_or_key_order(seed, envelope_id, name):
    from tests.conftest import SAMPLE_EVENTS

    # Given an event and a redelivery of it: new envelope id, new time, keys in another order
    original = SAMPLE_EVENTS[name]
    redelivered = _shuffled(copy.deepcopy(original), random.Random(seed))
    redelivered["id"] = str(envelope_id)
    redelivered["time"] = "2026-11-27T00:00:00Z"
    # When both are parsed from their SQS bodies
    first, second = parse_event(json.dumps(original)), parse_event(json.dumps(redelivered))
    # Then they share the dedup key
    assert first.dedup_key == second.dedup_key
    assert first.event_id != second.event_id or str(envelope_id) == original["id"]


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["metadata"].update(CorrelationId="00000000-0000-0000-0000-000000000000"),
        lambda d: d["eventBody"].update(eventTime=d["eventBody"]["eventTime"] + 1),
        lambda d: d["eventBody"].update(participantId="00000000-0000-0000-0000-000000000001"),
    ],
    ids=["correlation id", "event time", "participant id"],
)
def test_a_different_identity_gets_a_different_key(sample_events, change):
    original = sample_events["acd-end"]
    other = copy.deepcopy(original)
    change(other["detail"])
    assert parse_event(original).dedup_key != parse_event(other).dedup_key


def test_another_conversation_or_topic_gets_a_different_key(sample_events):
    original = sample_events["acd-end"]
    other_conversation = copy.deepcopy(original)
    other_id = "3e8ac11b-0000-4000-8000-000000000000"
    other_conversation["detail"]["eventBody"]["conversationId"] = other_id
    other_conversation["detail"]["topicName"] = original["detail"]["topicName"].replace(
        "2f7bf00a-5a9e-4d1b-9f3c-7e2a1b0c9d8e", other_id
    )
    other_topic = copy.deepcopy(original)
    other_topic["detail-type"] = original["detail-type"].replace("acd.end", "acd.start")
    other_topic["detail"]["topicName"] = original["detail"]["topicName"].replace("acd.end", "acd.start")
    keys = {parse_event(e).dedup_key for e in (original, other_conversation, other_topic)}
    assert len(keys) == 3


identities = st.builds(
    EventIdentity,
    topic=st.text(max_size=200),
    correlation_id=st.text(max_size=200),
    event_time_ms=st.integers(),
    conversation_id=st.text(max_size=200),
    participant_id=st.none() | st.text(max_size=50),
)


@given(identities)
def test_any_identity_yields_a_valid_execution_name(identity):
    key = identity.dedup_key()
    assert NAME.match(key) and is_dedup_key(key)
    assert identity.dedup_key() == key


def _fields(identity: EventIdentity) -> tuple:
    # No participant and an empty participant id are the same identity.
    return (
        identity.topic,
        identity.correlation_id,
        identity.event_time_ms,
        identity.conversation_id,
        identity.participant_id or "",
    )


@given(identities, identities)
def test_distinct_identities_get_distinct_keys(a, b):
    assert (a.dedup_key() == b.dedup_key()) == (_fields(a) == _fields(b))


def test_no_separator_trick_makes_two_identities_collide():
    a = EventIdentity("t", "a|b", 1, "c", None)
    b = EventIdentity("t", "a", 1, "b|c", None)
    assert a.dedup_key() != b.dedup_key()


def test_the_module_function_is_the_key_parse_event_sets(sample_events):
    # Given a sample and its identity fields
    envelope = sample_events["customer-end"]
    body = envelope["detail"]["eventBody"]
    # When the key is computed directly
    key = dedup_key(
        topic=envelope["detail-type"],
        correlation_id=envelope["detail"]["metadata"]["CorrelationId"],
        event_time_ms=body["eventTime"],
        conversation_id=body["conversationId"],
        participant_id=body["participantId"],
    )
    # Then it is the one the parser put on the event
    assert key == parse_event(envelope).dedup_key
