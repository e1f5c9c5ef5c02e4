"""gcpipe dlq show / replay."""
from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from gcpipe import traffic
from gcpipe.ops.target import Target

from .conftest import ORG_ID


@pytest.fixture
def dead_letters(env) -> list[str]:
    """25 dead-lettered envelopes: 15 with the dispatcher's reason, 10 moved by SQS (no attribute)."""
    sqs = env.client("sqs")
    rng = random.Random(11)
    bodies = []
    for i, event in enumerate(traffic.generate(25, topics=("acd.end",), source=traffic.partner_source(ORG_ID), rng=rng)):
        body = json.dumps(event)
        attrs = {"DeadLetterReason": {"DataType": "String", "StringValue": "unsupported detail.version '1'"}} if i < 15 else {}
        sqs.send_message(QueueUrl=env.outputs["DeadLetterQueueUrl"], MessageBody=body, MessageAttributes=attrs)
        bodies.append(body)
    return bodies


def test_show_peeks_with_reasons_redacted_and_leaves_messages(env, dead_letters):
    result = env.invoke("dlq", "show", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 25
    assert Counter(r["reason"] for r in rows) == {"unsupported detail.version '1'": 15, "maxReceiveCount exceeded": 10}
    assert {r["topic"] for r in rows} == {traffic.topic_template("acd.end")}
    assert all(r["conversation_id"] for r in rows)
    assert {r["receive_count"] for r in rows} == {0}  # receives before this look: none
    assert not any("tel:+" in r["body_preview"] for r in rows)  # ani/dnis redacted

    # Nothing consumed: every message is still there and visible again
    again = json.loads(env.invoke("dlq", "show", "--json").output)
    assert {r["message_id"] for r in again} == {r["message_id"] for r in rows}
    assert {r["receive_count"] for r in again} == {1}  # the first look, and only it


def test_show_human_output(env, dead_letters):
    result = env.invoke("dlq", "show", "--max", "5")
    assert result.exit_code == 0 and "5 dead-lettered message(s)" in result.output


def test_replay_moves_every_message_back_with_nothing_lost(env, dead_letters):
    result = env.invoke("dlq", "replay", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["moved"] == 25 and report["failed"] == 0
    main = env.queue_messages(env.outputs["MainQueueUrl"])
    assert sorted(m["Body"] for m in main) == sorted(dead_letters)
    assert not any("DeadLetterReason" in m["MessageAttributes"] for m in main)
    assert env.queue_messages(env.outputs["DeadLetterQueueUrl"]) == []


def test_replay_max_and_dry_run(env, dead_letters):
    dry = json.loads(env.invoke("dlq", "replay", "--dry-run", "--json").output)
    assert dry == {"dry_run": True, "dlq_depth": 25, "would_move": 25, "method": "receive, send, confirm, delete",
                   "would_keep": 0}
    assert env.queue_messages(env.outputs["MainQueueUrl"]) == []
    assert json.loads(env.invoke("dlq", "replay", "--max", "7", "--json").output)["moved"] == 7
    assert len(env.queue_messages(env.outputs["MainQueueUrl"])) == 7
    assert len(env.queue_messages(env.outputs["DeadLetterQueueUrl"])) == 18


class CrashingSqs:
    """The process 'dies' right after the first confirmed send, before the delete."""

    def __init__(self, real: Any):
        self._real, self.crashed, self.handles = real, False, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def receive_message(self, **kw: Any) -> dict[str, Any]:
        response = self._real.receive_message(**kw)
        self.handles += [m["ReceiptHandle"] for m in response.get("Messages", [])]
        return response

    def delete_message_batch(self, **kw: Any) -> dict[str, Any]:
        if not self.crashed:
            self.crashed = True
            raise KeyboardInterrupt("simulated crash between send and delete")
        return self._real.delete_message_batch(**kw)


def test_crash_between_send_and_delete_leaves_a_duplicate_at_worst(env, dead_letters, monkeypatch):
    wrapper: dict[str, CrashingSqs] = {}
    real_client = Target.client

    def client(self: Target, service: str) -> Any:
        c = real_client(self, service)
        if service == "sqs":
            wrapper.setdefault("sqs", CrashingSqs(c))
            return wrapper["sqs"]
        return c

    monkeypatch.setattr(Target, "client", client)
    crashed = env.invoke("dlq", "replay")  # click turns the interrupt into "Aborted!", exit 1
    assert crashed.exit_code == 1 and wrapper["sqs"].crashed
    # The crashed batch is on the main queue AND still in the DLQ; once its visibility
    # timeout ends (simulated) the next replay sends it again.
    sqs = env.client("sqs")
    for handle in wrapper["sqs"].handles:
        sqs.change_message_visibility(QueueUrl=env.outputs["DeadLetterQueueUrl"], ReceiptHandle=handle, VisibilityTimeout=0)

    result = env.invoke("dlq", "replay", "--json")

    assert result.exit_code == 0
    bodies = Counter(m["Body"] for m in env.queue_messages(env.outputs["MainQueueUrl"]))
    assert set(bodies) == set(dead_letters)  # nothing lost
    duplicated = [b for b, n in bodies.items() if n > 1]
    assert 0 < len(duplicated) <= 10 and max(bodies.values()) == 2  # the one crashed batch, at most twice
    assert env.queue_messages(env.outputs["DeadLetterQueueUrl"]) == []
    # The duplicates are harmless downstream: each is the same event (same dedup key), so the
    # dispatcher's StartExecution by name counts the second as a duplicate.
