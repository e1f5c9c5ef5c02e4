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
    for i, event in enumerate(
        traffic.generate(25, topics=("acd.end",), source=traffic.partner_source(ORG_ID), rng=rng)
    ):
        body = json.dumps(event)
        attrs = (
            {"DeadLetterReason": {"DataType": "String", "StringValue": "unsupported detail.version '1'"}}
            if i < 15
            else {}
        )
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
    assert dry == {
        "dry_run": True,
        "dlq_depth": 25,
        "would_move": 25,
        "method": "receive, send, confirm, delete",
        "would_keep": 0,
    }
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
        sqs.change_message_visibility(
            QueueUrl=env.outputs["DeadLetterQueueUrl"], ReceiptHandle=handle, VisibilityTimeout=0
        )

    result = env.invoke("dlq", "replay", "--json")

    assert result.exit_code == 0
    bodies = Counter(m["Body"] for m in env.queue_messages(env.outputs["MainQueueUrl"]))
    assert set(bodies) == set(dead_letters)  # nothing lost
    duplicated = [b for b, n in bodies.items() if n > 1]
    assert 0 < len(duplicated) <= 10 and max(bodies.values()) == 2  # the one crashed batch, at most twice
    assert env.queue_messages(env.outputs["DeadLetterQueueUrl"]) == []
    # The duplicates are harmless downstream: each is the same event (same dedup key), so the
    # dispatcher's StartExecution by name counts the second as a duplicate.


@pytest.fixture
def mixed_dead_letters(env) -> dict[str, list[str]]:
    """3 dead-lettered as malformed that still are, 2 dead-lettered under an old parser that now pass,
    2 moved by SQS after maxReceiveCount."""
    sqs = env.client("sqs")
    rng = random.Random(5)
    events = list(traffic.generate(7, topics=("acd.end",), source=traffic.partner_source(ORG_ID), rng=rng))
    kinds: dict[str, list[str]] = {"malformed": [], "fixed": [], "max_receive": []}

    def put(kind: str, event: dict, reason: str | None) -> None:
        attrs = {"DeadLetterReason": {"DataType": "String", "StringValue": reason}} if reason else {}
        mid = sqs.send_message(
            QueueUrl=env.outputs["DeadLetterQueueUrl"], MessageBody=json.dumps(event), MessageAttributes=attrs
        )["MessageId"]
        kinds[kind].append(mid)

    for e in events[:3]:
        put("malformed", traffic.missing_field(e), "missing field detail.eventBody.conversationId")
    for e in events[3:5]:
        put("fixed", e, "unsupported detail.version '2'")
    for e in events[5:]:
        put("max_receive", e, None)
    return kinds


def test_replay_shows_reasons_first_and_leaves_what_would_dead_letter_again(env, mixed_dead_letters):
    # When the operator replays the DLQ
    result = env.invoke("dlq", "replay")

    # Then the reasons come first, each with what replay does with it
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("the DLQ by dead-letter reason") < out.index("moved")
    assert "stays: would dead-letter again" in out and "replayed: could succeed now" in out
    assert "moved 4 message(s) to the main queue; 3 that would dead-letter again stay in the DLQ" in out

    # And only what could now succeed went back; the still-malformed ones are still on the DLQ, visible
    left = {m["MessageId"] for m in env.queue_messages(env.outputs["DeadLetterQueueUrl"])}
    assert left == set(mixed_dead_letters["malformed"])
    assert len(env.queue_messages(env.outputs["MainQueueUrl"])) == 4
    assert len(json.loads(env.invoke("dlq", "show", "--json").output)) == 3  # visible again at once


def test_replay_all_replays_everything_and_dry_run_prints_no_none(env, mixed_dead_letters):
    dry = env.invoke("dlq", "replay", "--dry-run")
    assert "would move 4" in dry.output and "3 that would dead-letter again stay" in dry.output
    dry_all = env.invoke("dlq", "replay", "--dry-run", "--all")
    assert "would move 7" in dry_all.output
    assert "None" not in dry.output + dry_all.output
    assert "conversation -" in dry_all.output  # the malformed ones have no conversation id: said as "-"
    assert json.loads(env.invoke("dlq", "replay", "--dry-run", "--json").output)["would_keep"] == 3

    result = json.loads(env.invoke("dlq", "replay", "--all", "--json").output)
    assert (result["moved"], result["kept"]) == (7, 0)
    assert env.queue_messages(env.outputs["DeadLetterQueueUrl"]) == []


def test_show_says_receives_exclude_its_own_look(env, mixed_dead_letters):
    out = env.invoke("dlq", "show").output
    assert "receives: before this look" in out and "gcpipe local run" in out
