"""``gcpipe dlq show | replay``: the main queue's dead-letter queue.

Two ways a message gets there:
* the dispatcher dead-letters a malformed/unsupported event itself and sets the
  message attribute ``DeadLetterReason``;
* SQS moves a message after ``maxReceiveCount`` failed receives (redrive
  policy); SQS adds no attribute, so no reason means "maxReceiveCount exceeded".

Replay moves messages back to the main queue without loss: a message is
deleted from the DLQ only after SQS confirmed its copy on the main queue. A
crash between the send and the delete leaves the message in the DLQ (it
reappears when its visibility timeout ends) and a copy on the main queue: a
replay then sends it again, a duplicate at worst, never a loss. The pipeline
absorbs that duplicate: the dispatcher names the execution after the event's
dedup key, and a second StartExecution with that name is counted as a
duplicate, not processed twice.

Replay replays only what could now succeed (``assess``): a message the
dispatcher dead-lettered for being malformed (it carries ``DeadLetterReason``)
is checked again with the pipeline's current parser and the environment's org;
if it still fails, replaying it would only dead-letter it again, so it stays
(unless the operator asks for everything). A message SQS moved after
``maxReceiveCount`` is always replayable: what failed was the dispatcher, not
the event.

Receive counts. SQS has no peek: a look is a receive and counts as one.
``show`` reports the count *before* its own look.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from genesys_pipeline.errors import InvalidEvent
from genesys_pipeline.redaction import redact

from .send import SQS_MAX_BATCH_BYTES, expected_org
from .target import Target
from .validation import load_parser

MAX_RECEIVE_REASON = "maxReceiveCount exceeded"
REASON_ATTRIBUTE = "DeadLetterReason"
# SQS: ReceiveMessage returns at most 10 messages per call (API reference).
RECEIVE_MAX = 10
# Long enough that messages seen in this run are not received twice while we page
# through the queue; show puts them back (visibility 0) when done.
PEEK_VISIBILITY_SECONDS = 30
MOVE_VISIBILITY_SECONDS = 120


@dataclass
class DeadLetter:
    message_id: str
    reason: str
    topic: str | None
    conversation_id: str | None
    receive_count: int
    sent: str | None
    body_preview: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _describe(message: dict[str, Any]) -> DeadLetter:
    attrs = message.get("MessageAttributes") or {}
    reason = (attrs.get(REASON_ATTRIBUTE) or {}).get("StringValue") or MAX_RECEIVE_REASON
    system = message.get("Attributes") or {}
    topic = conversation_id = None
    try:
        envelope = json.loads(message.get("Body") or "")
    except json.JSONDecodeError:
        envelope = None
    if isinstance(envelope, dict):
        topic = envelope.get("detail-type") if isinstance(envelope.get("detail-type"), str) else None
        raw_detail = envelope.get("detail")
        detail = raw_detail if isinstance(raw_detail, dict) else {}
        raw_body = detail.get("eventBody")
        body = raw_body if isinstance(raw_body, dict) else {}
        conversation_id = body.get("conversationId") if isinstance(body.get("conversationId"), str) else None
        preview = json.dumps(redact(envelope), separators=(",", ":"))
    else:
        preview = str(redact(message.get("Body") or ""))
    sent = system.get("SentTimestamp")
    if sent:
        sent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(sent) / 1000))
    return DeadLetter(
        message_id=message["MessageId"],
        reason=str(redact(reason)),
        topic=topic,
        conversation_id=conversation_id,
        # Receives before this look: the look itself is one (SQS has no peek).
        receive_count=max(0, int(system.get("ApproximateReceiveCount", 0)) - 1),
        sent=sent,
        body_preview=preview[:300],
    )


def _receive(sqs: Any, queue_url: str, visibility: int, max_messages: int = RECEIVE_MAX) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=min(RECEIVE_MAX, max_messages),
        VisibilityTimeout=visibility,
        WaitTimeSeconds=0,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    ).get("Messages", [])


def _release(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    for i in range(0, len(messages), RECEIVE_MAX):
        chunk = messages[i : i + RECEIVE_MAX]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(chunk)
            ],
        )


def depth(target: Target, queue_url: str) -> int:
    attrs = target.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


def show(target: Target, max_messages: int = 100) -> list[DeadLetter]:
    """Peek at up to ``max_messages`` DLQ messages without consuming them.

    Peeking is a receive: it adds one to each message's receive count (the DLQ
    has no redrive policy of its own, so that is harmless; the count shown is the
    one before this look) and the messages are made visible again at once when
    done, even if this fails half way.
    """
    return [_describe(m) for m in _peek(target, max_messages)]


def _peek(target: Target, max_messages: int) -> list[dict[str, Any]]:
    sqs = target.client("sqs")
    queue_url = target.output("DeadLetterQueueUrl")
    held: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        while len(seen) < max_messages:
            batch = _receive(sqs, queue_url, PEEK_VISIBILITY_SECONDS, max_messages - len(seen))
            new = [m for m in batch if m["MessageId"] not in seen]
            held.extend(batch)
            if not new:
                break
            seen.update(m["MessageId"] for m in new)
    finally:
        if held:
            _release(sqs, queue_url, held)
    unique = {m["MessageId"]: m for m in held}
    return list(unique.values())[:max_messages]


@dataclass
class Assessment:
    """A dead letter, and whether replaying it now could succeed."""

    letter: DeadLetter
    still_fails: str | None  # why the dispatcher would dead-letter it again; None: it could succeed now

    def as_json(self) -> dict[str, Any]:
        return {**self.letter.as_json(), "still_fails": self.still_fails}


def assess(target: Target, max_messages: int = 10_000) -> list[Assessment]:
    """Peek at the DLQ and check each message the dispatcher refused against today's parser and org."""
    parse, _ = load_parser()
    org = expected_org(target)
    return [Assessment(_describe(m), _still_fails(m, parse, org)) for m in _peek(target, max_messages)]


def _still_fails(message: dict[str, Any], parse: Any, org: str | None) -> str | None:
    if REASON_ATTRIBUTE not in (message.get("MessageAttributes") or {}):
        return None  # moved by SQS after maxReceiveCount: the dispatcher failed, not the event
    try:
        envelope = json.loads(message.get("Body") or "")
    except json.JSONDecodeError:
        return "not JSON"
    try:
        event = parse(envelope)
    except InvalidEvent as exc:
        return str(redact(getattr(exc, "reason", None) or str(exc)))
    if org and event.org_id != org:
        return f"wrong org: event org {event.org_id}, environment org {org}"
    return None


@dataclass
class ReplayReport:
    moved: int = 0
    failed: int = 0
    kept: int = 0  # left in the DLQ on purpose: they would dead-letter again (see assess)
    method: str = ""
    task_handle: str | None = None
    status: str | None = None
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def replay_by_copy(
    target: Target,
    *,
    max_messages: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    crash_after_send: Callable[[dict[str, Any]], None] | None = None,
    keep: set[str] | frozenset[str] = frozenset(),
) -> ReplayReport:
    """Receive from the DLQ, send a copy to the main queue, and delete only what SQS confirmed.
    Messages whose ids are in ``keep`` stay in the DLQ.

    ``crash_after_send`` is a test seam: called between the confirmed send and the delete.
    """
    sqs = target.client("sqs")
    dlq_url, main_url = target.output("DeadLetterQueueUrl"), target.output("MainQueueUrl")
    report = ReplayReport(method="receive, send to main queue, confirm, delete")
    on_progress = on_progress or (lambda n: None)
    seen: set[str] = set()
    unsent: list[dict[str, Any]] = []
    try:
        _copy_loop(sqs, dlq_url, main_url, report, seen, unsent, max_messages, on_progress, crash_after_send, keep)
    finally:
        if unsent:
            _release(sqs, dlq_url, unsent)  # they stay in the DLQ, visible again
    report.status = "COMPLETED" if not report.failed else "PARTIAL"
    report.detail = (
        f"moved {report.moved} message(s) to the main queue"
        + (f"; {report.kept} that would dead-letter again stay in the DLQ" if report.kept else "")
        + (f"; {report.failed} could not be sent and stay in the DLQ" if report.failed else "")
    )
    return report


def _copy_loop(
    sqs: Any,
    dlq_url: str,
    main_url: str,
    report: ReplayReport,
    seen: set[str],
    unsent: list[dict[str, Any]],
    max_messages: int | None,
    on_progress: Callable[[int], None],
    crash_after_send: Callable[[dict[str, Any]], None] | None,
    keep: set[str] | frozenset[str],
) -> None:
    while max_messages is None or report.moved < max_messages:
        want = RECEIVE_MAX if max_messages is None else min(RECEIVE_MAX, max_messages - report.moved)
        messages = [m for m in _receive(sqs, dlq_url, MOVE_VISIBILITY_SECONDS, want) if m["MessageId"] not in seen]
        if not messages:
            break
        seen.update(m["MessageId"] for m in messages)
        kept = [m for m in messages if m["MessageId"] in keep]
        if kept:
            report.kept += len(kept)
            unsent.extend(kept)  # held invisible until the end (so this run does not loop on them), then released
            messages = [m for m in messages if m["MessageId"] not in keep]
            if not messages:
                continue
        entries = []
        for n, m in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(n), "MessageBody": m["Body"]}
            # Keep the sender's attributes, but not the dead-letter reason: back on the main
            # queue the message is a fresh delivery.
            attrs = {
                k: {kk: vv for kk, vv in v.items() if kk in ("DataType", "StringValue", "BinaryValue")}
                for k, v in (m.get("MessageAttributes") or {}).items()
                if k != REASON_ATTRIBUTE
            }
            if attrs:
                entry["MessageAttributes"] = attrs
            entries.append(entry)
        confirmed: set[str] = set()
        for chunk in _byte_chunks(entries):
            response = sqs.send_message_batch(QueueUrl=main_url, Entries=chunk)
            confirmed.update(ok["Id"] for ok in response.get("Successful", []))
        to_delete = [m for n, m in enumerate(messages) if str(n) in confirmed]
        not_sent = [m for n, m in enumerate(messages) if str(n) not in confirmed]
        if crash_after_send is not None:
            for m in to_delete:
                crash_after_send(m)
        if to_delete:
            deleted = sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(to_delete)],
            )
            # A failed delete leaves the message in the DLQ, already copied: a duplicate at worst.
            report.moved += len(deleted.get("Successful", []))
            on_progress(len(deleted.get("Successful", [])))
        if not_sent:
            report.failed += len(not_sent)
            unsent.extend(not_sent)  # held invisible until the end, so this run does not loop on them


def _entry_size(entry: dict[str, Any]) -> int:
    size = len(entry["MessageBody"].encode("utf-8"))
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value.get("DataType", "").encode())
        size += len((value.get("StringValue") or "").encode()) + len(value.get("BinaryValue") or b"")
    return size


def _byte_chunks(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Ten received messages can exceed SendMessageBatch's 256 KiB total (see send.py for the limits)."""
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    total = 0
    for entry in entries:
        size = _entry_size(entry)
        if current and total + size > SQS_MAX_BATCH_BYTES:
            chunks.append(current)
            current, total = [], 0
        current.append(entry)
        total += size
    if current:
        chunks.append(current)
    return chunks


def replay_by_move_task(
    target: Target,
    *,
    poll_seconds: float = 5.0,
    on_progress: Callable[[int, int], None] | None = None,
    wait: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayReport:
    """SQS's own DLQ redrive (StartMessageMoveTask), the API behind the console's "Start DLQ redrive"."""
    sqs = target.client("sqs")
    source, destination = target.output("DeadLetterQueueArn"), target.output("MainQueueArn")
    handle = sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)["TaskHandle"]
    report = ReplayReport(method="SQS message move task", task_handle=handle, status="RUNNING")
    while wait:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=1).get("Results", [])
        task = next((t for t in tasks if t.get("TaskHandle") in (handle, None)), tasks[0] if tasks else {})
        report.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        report.status = task.get("Status", "UNKNOWN")
        if on_progress:
            on_progress(report.moved, int(task.get("ApproximateNumberOfMessagesToMove", 0) or 0))
        if report.status in ("COMPLETED", "FAILED", "CANCELLED"):
            if report.status == "FAILED":
                report.failed = 1
                report.detail = task.get("FailureReason", "move task failed")
            break
        sleep(poll_seconds)
    report.detail = report.detail or f"move task {(report.status or '').lower()}, {report.moved} message(s) moved"
    return report
