"""gcpipe.traffic: the generator is a library the local runner uses too."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from genesys_pipeline.errors import InvalidEvent
from gcpipe import traffic
from gcpipe.ops.validation import load_parser

parse, _ = load_parser()


def test_events_parse_and_carry_the_given_identity():
    at = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    e = traffic.acd_end(conversation_id="c-1", participant_id="p-1", at=at, queue_id="q-1", rng=random.Random(1))
    event = parse(e)
    assert (event.conversation_id, event.participant_id, event.queue_id) == ("c-1", "p-1", "q-1")
    assert e["detail"]["eventBody"]["eventTime"] == int(at.timestamp() * 1000)
    assert e["detail"]["topicName"] == "v2.detail.events.conversation.c-1.acd.end"
    assert parse(traffic.customer_end(rng=random.Random(2))).topic.endswith("customer.end")


def test_duplicate_has_the_same_dedup_key_but_a_new_envelope():
    rng = random.Random(3)
    e = traffic.customer_end(rng=rng)
    d = traffic.duplicate(e, rng=rng)
    assert d["id"] != e["id"] and parse(d).dedup_key == parse(e).dedup_key
    assert json.dumps(d) != json.dumps({**e, "id": d["id"]})  # key order differs


def test_late_event_keeps_identity_fields_but_an_old_event_time():
    e = traffic.acd_end(rng=random.Random(4))
    late = traffic.late(e, by=timedelta(days=2))
    assert e["detail"]["eventBody"]["eventTime"] - late["detail"]["eventBody"]["eventTime"] == 2 * 86400 * 1000
    assert late["time"] == e["time"]


@pytest.mark.parametrize("kind", [k for k in traffic.MALFORMED_KINDS if k != "wrong_org"])
def test_malformed_variants_are_rejected_by_the_parser(kind):
    bad = traffic.malformed(traffic.acd_end(rng=random.Random(5)), kind, rng=random.Random(6))
    with pytest.raises((InvalidEvent, ValueError)):
        parse(bad)


def test_mix_counts():
    items = traffic.mix(20, duplicates=5, malformed_count=4, late_count=2, rng=random.Random(8))
    kinds = [i.kind for i in items]
    assert len(items) == 31 and kinds.count("duplicate") == 5 and kinds.count("late") == 2
