"""gcpipe send: validation, dedup, rule filter, chunking, retries, audit log."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gcpipe import traffic
from gcpipe.ops import send as send_ops
from gcpipe.ops.target import Target
from gcpipe.ops.validation import load_parser

from .conftest import ORG_ID, QUEUE_ID

SOURCE = traffic.partner_source(ORG_ID)
parse, _ = load_parser()


def write_jsonl(path: Path, items: list[traffic.TrafficItem]) -> Path:
    path.write_text("".join(item.line() + "\n" for item in items))
    return path


def audit_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class RecordingSqs:
    """Wraps the real (moto) SQS client: records SendMessageBatch calls and can fail entries."""

    def __init__(self, real: Any, fail: Any = None):
        self._real, self._fail = real, fail
        self.batch_calls: list[list[dict[str, Any]]] = []
        self.attempts: Counter = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        self.batch_calls.append(Entries)
        failed, passed = [], []
        for entry in Entries:
            self.attempts[entry["Id"]] += 1
            verdict = self._fail(entry, self.attempts[entry["Id"]]) if self._fail else None
            (failed if verdict else passed).append((entry, verdict))
        response = (
            self._real.send_message_batch(QueueUrl=QueueUrl, Entries=[e for e, _ in passed])
            if passed
            else {"Successful": [], "ResponseMetadata": {}}
        )
        response.setdefault("Failed", [])
        response["Failed"] = list(response["Failed"]) + [
            {
                "Id": e["Id"],
                "SenderFault": v == "sender",
                "Code": "InvalidParameterValue" if v == "sender" else "InternalError",
                "Message": "injected",
            }
            for e, v in failed
        ]
        return response


@pytest.fixture
def recording_sqs(monkeypatch):
    holder: dict[str, RecordingSqs] = {}
    real_client = Target.client

    def install(fail=None) -> dict[str, RecordingSqs]:
        def client(self: Target, service: str) -> Any:
            c = real_client(self, service)
            if service != "sqs":
                return c
            if "sqs" not in holder:
                holder["sqs"] = RecordingSqs(c, fail)
            return holder["sqs"]

        monkeypatch.setattr(Target, "client", client)
        # send builds its own SQS client (botocore retries off): record that one
        monkeypatch.setattr(send_ops, "sqs_client", lambda target: target.client("sqs"))
        return holder

    return install


def test_send_1000_events_with_malformed_and_duplicates(env, tmp_path):
    # Given 1,000 distinct events, 50 malformed lines and 100 redeliveries, shuffled
    items = traffic.mix(
        1000, duplicates=100, malformed_count=50, source=SOURCE, queue_ids=(QUEUE_ID,), rng=random.Random(7)
    )
    path = write_jsonl(tmp_path / "events.jsonl", items)
    audit = tmp_path / "audit.jsonl"

    # When they are sent
    result = env.invoke("send", str(path), "--audit-log", str(audit), "--json")

    # Then every distinct event is accepted once; rejects and duplicates are reported by line
    summary = json.loads(result.output)
    assert (
        summary["lines"],
        summary["accepted"],
        summary["rejected"],
        summary["duplicate"],
        summary["filtered"],
        summary["failed"],
    ) == (1150, 1000, 50, 100, 0, 0)
    assert result.exit_code == 1  # rejects make it a partial success
    malformed_lines = {n for n, item in enumerate(items, start=1) if item.kind in traffic.MALFORMED_KINDS}
    assert {r["line"] for r in summary["rejected_lines"]} == malformed_lines
    assert all(r["reason"] for r in summary["rejected_lines"])
    assert any(r["reason"].startswith("wrong org") for r in summary["rejected_lines"])
    assert any("invalid JSON" in r["reason"] for r in summary["rejected_lines"])
    assert all(d["duplicate_of"] < d["line"] for d in summary["duplicate_lines"])

    # And the audit log holds exactly one line per input line
    records = audit_records(audit)
    assert sorted(r["line"] for r in records) == list(range(1, 1151))
    assert Counter(r["status"] for r in records) == {"accepted": 1000, "rejected": 50, "duplicate": 100}
    accepted = [r for r in records if r["status"] == "accepted"]
    assert all(r["request_id"] and r["dedup_key"] and r["ts"] for r in accepted)

    # And the main queue received exactly the accepted messages, byte for byte
    lines = path.read_text().splitlines()
    bodies = sorted(m["Body"] for m in env.queue_messages(env.outputs["MainQueueUrl"]))
    assert bodies == sorted(lines[r["line"] - 1] for r in accepted)
    assert len({parse(b).dedup_key for b in bodies}) == 1000


def test_send_counts_events_the_rule_would_not_deliver_as_filtered(env, tmp_path):
    items = [
        traffic.TrafficItem("event", traffic.acd_end(source=SOURCE, queue_id=QUEUE_ID)),
        traffic.TrafficItem("event", traffic.acd_end(source=SOURCE, queue_id="other-queue")),
        traffic.TrafficItem("event", traffic.attributes_event(source=SOURCE)),
        traffic.TrafficItem("event", traffic.customer_end(source=SOURCE)),
    ]
    audit = tmp_path / "a.jsonl"
    result = env.invoke("send", str(write_jsonl(tmp_path / "e.jsonl", items)), "--audit-log", str(audit), "--json")
    summary = json.loads(result.output)
    assert result.exit_code == 0
    assert (summary["accepted"], summary["filtered"]) == (2, 2)
    assert {r["line"] for r in audit_records(audit) if r["status"] == "filtered"} == {2, 3}
    assert len(env.queue_messages(env.outputs["MainQueueUrl"])) == 2


def test_send_generate_uses_the_environments_org_and_topics(env, tmp_path):
    result = env.invoke(
        "send",
        "--generate",
        "25",
        "--topic",
        "acd.end",
        "--seed",
        "1",
        "--audit-log",
        str(tmp_path / "a.jsonl"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accepted"] == 25
    for m in env.queue_messages(env.outputs["MainQueueUrl"]):
        event = parse(m["Body"])
        assert event.org_id == ORG_ID and event.topic.endswith(".acd.end") and event.queue_id == QUEUE_ID


def test_batches_respect_entry_and_byte_limits_and_oversized_event_is_rejected(env, tmp_path, recording_sqs):
    holder = recording_sqs()
    rng = random.Random(3)
    items = []
    for _ in range(30):  # small events: full batches of 10
        items.append(traffic.TrafficItem("event", traffic.customer_end(source=SOURCE, rng=rng)))
    for _ in range(9):  # ~60 KB events: at most 4 fit in 256 KiB
        e = traffic.customer_end(source=SOURCE, rng=rng)
        e["detail"]["eventBody"]["notes"] = "x" * 60_000
        items.append(traffic.TrafficItem("event", e))
    oversized = traffic.customer_end(source=SOURCE, rng=rng)
    oversized["detail"]["eventBody"]["notes"] = "y" * 300_000
    items.append(traffic.TrafficItem("event", oversized))
    audit = tmp_path / "a.jsonl"

    result = env.invoke("send", str(write_jsonl(tmp_path / "e.jsonl", items)), "--audit-log", str(audit), "--json")

    summary = json.loads(result.output)
    assert (summary["accepted"], summary["rejected"]) == (39, 1)
    [reject] = summary["rejected_lines"]
    size = len(items[-1].line().encode())
    assert reject["line"] == 40 and reject["reason"] == f"event is {size} bytes; the limit is 262144 bytes per message"
    calls = holder["sqs"].batch_calls
    assert all(len(c) <= send_ops.SQS_MAX_BATCH_ENTRIES for c in calls)
    assert all(sum(len(e["MessageBody"].encode()) for e in c) <= send_ops.SQS_MAX_BATCH_BYTES for c in calls)
    assert [len(c) for c in calls[:3]] == [10, 10, 10]
    assert max(len(c) for c in calls[3:]) == 4
    assert len(env.queue_messages(env.outputs["MainQueueUrl"])) == 39


def test_partially_failed_batches_are_retried_with_nothing_lost_or_duplicated(env, tmp_path, recording_sqs):
    # Given SQS fails every third entry on its first two attempts, and one entry for good (sender fault)
    def fail(entry, attempt):
        n = int(entry["Id"][1:])
        if n == 17:
            return "sender"
        return "server" if n % 3 == 0 and attempt <= 2 else None

    holder = recording_sqs(fail)
    items = [traffic.TrafficItem("event", e) for e in traffic.generate(60, source=SOURCE, rng=random.Random(5))]
    audit = tmp_path / "a.jsonl"

    result = env.invoke("send", str(write_jsonl(tmp_path / "e.jsonl", items)), "--audit-log", str(audit), "--json")

    summary = json.loads(result.output)
    assert (summary["accepted"], summary["failed"]) == (59, 1)
    assert summary["retried_entries"] > 0
    assert result.exit_code == 1
    records = {r["line"]: r for r in audit_records(audit)}
    assert records[17]["status"] == "failed" and "sender fault" in records[17]["reason"]
    assert holder["sqs"].attempts["l17"] == 1  # a sender fault is not retried
    assert records[3]["status"] == "accepted" and records[3]["attempts"] == 3
    bodies = [m["Body"] for m in env.queue_messages(env.outputs["MainQueueUrl"])]
    assert len(bodies) == len(set(bodies)) == 59
    lines = [item.line() for item in items]
    assert set(bodies) == set(lines) - {lines[16]}


def test_dry_run_sends_nothing(env, tmp_path):
    result = env.invoke("send", "--generate", "12", "--dry-run", "--audit-log", str(tmp_path / "a.jsonl"), "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["accepted"] == 12
    assert env.queue_messages(env.outputs["MainQueueUrl"]) == []


def test_send_human_output_lists_rejects_by_line(env, tmp_path):
    good = traffic.customer_end(source=SOURCE)
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n" + json.dumps(traffic.duplicate(good)) + "\n")
    result = env.invoke("send", str(path), "--audit-log", str(tmp_path / "a.jsonl"), "--no-progress")
    assert result.exit_code == 1
    assert "rejected: 1" in result.output and "invalid JSON" in result.output
    assert "duplicates (dropped): 1" in result.output
    assert len(audit_records(tmp_path / "a.jsonl")) == 3
