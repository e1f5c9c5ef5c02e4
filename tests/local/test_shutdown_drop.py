"""The second Ctrl-C's dropped list (gcpipe.local.shutdown): every event still on the main queue is on it.

An event is on the main queue in one of three states: visible, deferred by the request budget
(DelaySeconds) or in flight (received and not deleted: a batch whose dispatch failed, or anyone
holding it). A receive-based peek sees only the first, so the list reads the emulator itself.
"""

from __future__ import annotations

import json
import random

import pytest

from gcpipe import traffic
from gcpipe.local.deploy import GenesysEndpoint
from gcpipe.local.pipeline import LocalPipeline
from gcpipe.local.run.stack_config import read_stack_config
from gcpipe.local.shutdown import DELAYED, IN_FLIGHT, QUEUED, Shutdown

ENV = "dev"


@pytest.fixture
def pipeline(synthesized):
    genesys = GenesysEndpoint("http://127.0.0.1:9", "sim-client", "sim-secret")
    with LocalPipeline(ENV, cdk_out=synthesized, genesys=genesys) as p:
        yield p


def test_the_dropped_list_has_the_visible_the_deferred_and_the_in_flight_events(pipeline, tmp_path):
    config = read_stack_config(pipeline)
    source = f"aws.partner/genesys.com/cloud/{config.org_id}/contact-center-events"
    events = list(
        traffic.generate(3, topics=("acd.end",), queue_ids=config.queue_ids, source=source, rng=random.Random(5))
    )
    sqs, url = pipeline.client("sqs"), pipeline.outputs["MainQueueUrl"]
    # Given one event deferred by the budget, and one received by a batch that never deleted it
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(events[0]), DelaySeconds=60)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(events[1]))
    [held] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)["Messages"]
    assert json.loads(held["Body"])["id"] == events[1]["id"]
    # and one visible
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(events[2]))

    # When the stack stops at once
    said: list[str] = []
    result = Shutdown(pipeline, tmp_path, say=said.append).drop()

    # Then each is listed once, saying where it was
    where = {d.event_id: d.where for d in result.dropped}
    assert where == {events[0]["id"]: DELAYED, events[1]["id"]: IN_FLIGHT, events[2]["id"]: QUEUED}
    assert all(d.dedup_key for d in result.dropped)
    assert result.dropped_file is not None
    assert len(result.dropped_file.read_text().splitlines()) == 3
