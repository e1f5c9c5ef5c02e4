"""Accounting of a local run: every event sent, matched to the one outcome the pipeline gave it.

The evidence is the pipeline's own:
- the outcome records (``genesys_pipeline.outcomes.OutcomeRecord``: one per event outcome, built by
  ``observability.record_outcome``), which every function hands to its outcome sink; the local
  runtime delivers them to ``outcome_sink.FEED``, where ``OutcomeCapture`` collects them. Only their
  typed fields are read (outcome, dedup key, reason, event id, message id, execution), never a log line;
- the main queue's dead-letter queue (a record SQS redrove after
  maxReceiveCount has no outcome record; its body is the envelope, so its ``id``
  names the event);
- "filtered by the rule": the deployed rule's pattern evaluated on the envelope
  EventBridge delivered (``gcpipe.ops.rule.RuleMatcher``, moto's matcher, as
  ``gcpipe send`` does), for events the rule does not deliver anywhere.

Matching: by dedup key (``genesys_pipeline.events.parse_event``, the
dispatcher's own) for parseable events, by EventBridge event id for the others.
A key sent n times (redeliveries) must have n outcomes: one from its execution
(applied or failed; a local replay's result supersedes the failure it
replays), the others duplicates. Outcomes for keys this run did not send are
counted apart (``foreign``), not matched.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from genesys_pipeline.outcomes import OutcomeRecord

from .outcome_sink import FEED, OutcomeFeed
from .stepfunctions import REPLAY_MARK

OUTCOMES = ("applied", "duplicate", "filtered", "stale", "dead_lettered", "failed", "skipped")
DLQ_REDRIVE_REASON = "exceeded the main queue's maxReceiveCount (SQS redrive to the DLQ)"


@dataclass(frozen=True)
class CapturedOutcome:
    """One outcome record, as a function of the pipeline recorded it, in arrival order (``seq``)."""

    seq: int
    record: OutcomeRecord
    function: str | None = None  # the function that recorded it, when the runtime knows

    @property
    def outcome(self) -> str:
        return self.record.outcome.value

    @property
    def dedup_key(self) -> str | None:
        return self.record.dedup_key

    @property
    def reason(self) -> str | None:
        return self.record.reason

    @property
    def execution_name(self) -> str | None:
        return self.record.execution_name

    @property
    def event_id(self) -> str | None:
        return self.record.event_id

    @property
    def message_id(self) -> str | None:
        return self.record.message_id


class OutcomeCapture:
    """Collects every outcome record the pipeline's functions send (thread-safe)."""

    def __init__(self, feed: OutcomeFeed = FEED) -> None:
        self._feed = feed
        self._records: list[CapturedOutcome] = []
        self._lock = threading.Lock()
        self._attached = False

    def __call__(self, record: OutcomeRecord, function: str | None = None) -> None:
        with self._lock:
            self._records.append(CapturedOutcome(len(self._records), record, function))

    @property
    def lines(self) -> list[CapturedOutcome]:
        with self._lock:
            return list(self._records)

    def attach(self) -> "OutcomeCapture":
        if not self._attached:
            self._feed.subscribe(self)
            self._attached = True
        return self

    def detach(self) -> None:
        if self._attached:
            self._feed.unsubscribe(self)
            self._attached = False

    def __enter__(self) -> "OutcomeCapture":
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()


@dataclass
class DeadLetter:
    """A message seen on the dead-letter queue."""

    message_id: str
    event_id: str | None
    reason: str | None
    body: str
    original_message_id: str | None = None  # the main queue's message id (the dispatcher's OriginalMessageId attribute)


@dataclass
class TrackedEvent:
    """One event of the run, from its input to its outcome."""

    index: int
    kind: str  # what the generator meant it to be ("event", "duplicate", "late", ...) or "file"
    envelope: dict[str, Any]
    line: int | None = None  # --events line (1-based)
    phase: str = "main"
    route: str = "bus"  # "bus" (PutPartnerEvents) or "queue" (straight to the main queue, as `gcpipe send` does)
    event_id: str | None = None  # the id EventBridge gave it (the envelope id on the queue route)
    dedup_key: str | None = None
    invalid_reason: str | None = None  # what the pipeline's parser says, for parseable-or-not insight
    sent: bool = False
    rule_filtered: str | None = None  # why the deployed rule does not deliver it (then its outcome is "filtered")
    send_error: str | None = None
    outcome: str | None = None
    reason: str | None = None
    execution: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "line": self.line,
            "kind": self.kind,
            "phase": self.phase,
            "route": self.route,
            "event_id": self.event_id,
            "dedup_key": self.dedup_key,
            "outcome": self.outcome,
        }
        if self.reason:
            data["reason"] = self.reason
        if self.execution:
            data["execution"] = self.execution
        if self.send_error:
            data["error"] = self.send_error
        if self.notes:
            data["notes"] = list(self.notes)
        return data


@dataclass
class Accounting:
    sent: int
    counts: Counter
    unaccounted: list[TrackedEvent]
    over_accounted: list[str]  # "dedup key K: 3 outcomes for 2 events"
    foreign: int  # outcome lines for events this run did not send
    superseded: int  # failures a replay resolved

    @property
    def total(self) -> int:
        return sum(self.counts[o] for o in OUTCOMES)

    @property
    def holds(self) -> bool:
        return self.sent == self.total and not self.unaccounted and not self.over_accounted

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            **{o: self.counts[o] for o in OUTCOMES},
            "accounted": self.total,
            "holds": self.holds,
            "equation": f"sent {self.sent} = "
            + " + ".join(f"{o} {self.counts[o]}" for o in OUTCOMES)
            + f" (= {self.total})",
            "unaccounted": [e.event_id or f"#{e.index}" for e in self.unaccounted],
            "more_than_one_outcome": list(self.over_accounted),
            "outcomes_for_events_not_sent_by_this_run": self.foreign,
            "failures_resolved_by_replay": self.superseded,
        }


class Ledger:
    """The run's events and their outcomes. ``resolve()`` recomputes the matching from all evidence."""

    def __init__(self) -> None:
        self.events: list[TrackedEvent] = []
        self._lock = threading.Lock()

    def add(self, event: TrackedEvent) -> TrackedEvent:
        with self._lock:
            event.index = len(self.events)
            self.events.append(event)
        return event

    @property
    def sent(self) -> list[TrackedEvent]:
        return [e for e in self.events if e.sent]

    def resolve(self, lines: Iterable[CapturedOutcome], dead_letters: Iterable[DeadLetter] = ()) -> Accounting:
        sent = self.sent
        for e in sent:
            e.outcome, e.reason, e.execution = None, None, None
            e.notes = [n for n in e.notes if "replay" not in n]
            if e.rule_filtered:
                e.outcome, e.reason = "filtered", e.rule_filtered
        reached = [e for e in sent if not e.rule_filtered]
        by_id = {e.event_id: e for e in reached if e.event_id}
        by_key: dict[str, list[TrackedEvent]] = defaultdict(list)
        for e in reached:
            if e.dedup_key:
                by_key[e.dedup_key].append(e)
        lines = sorted(lines, key=lambda ln: ln.seq)
        over: list[str] = []
        foreign = 0
        superseded = 0

        # 1. dead letters: the DLQ message names the event (its body is the envelope); the
        #    dispatcher's line (message_id = the DLQ message's OriginalMessageId) adds the reason.
        dead_letters = list(dead_letters)
        event_of_message = {
            m.original_message_id: m.event_id for m in dead_letters if m.original_message_id and m.event_id
        }
        dl_reasons: dict[str, str] = {}
        dl_lines_by_key: dict[str, list[CapturedOutcome]] = defaultdict(list)
        for ln in lines:
            if ln.outcome != "dead_lettered":
                continue
            ids = {ln.event_id} if ln.event_id else set()
            if ln.message_id in event_of_message:
                ids.add(event_of_message[ln.message_id])
            ids &= set(by_id)
            if ids:
                for i in ids:
                    dl_reasons.setdefault(i, ln.reason or "")
            elif ln.dedup_key and ln.dedup_key in by_key:
                dl_lines_by_key[ln.dedup_key].append(ln)
            else:
                foreign += 1
        dead_ids: set[str] = set()
        for m in dead_letters:
            if m.event_id in by_id and m.event_id not in dead_ids:
                dead_ids.add(m.event_id)
                e = by_id[m.event_id]
                e.outcome = "dead_lettered"
                e.reason = m.reason or dl_reasons.get(m.event_id) or DLQ_REDRIVE_REASON
        for i, reason in dl_reasons.items():  # logged as dead-lettered, not (yet) seen on the DLQ
            if i not in dead_ids:
                e = by_id[i]
                e.outcome, e.reason = "dead_lettered", reason or None
        for key, dl in dl_lines_by_key.items():
            pending = [e for e in by_key[key] if e.outcome is None]
            for ln, e in zip(dl, pending, strict=False):
                e.outcome, e.reason = "dead_lettered", ln.reason
            if len(dl) > len(pending):
                over.append(f"dedup key {key}: {len(dl) - len(pending)} dead-letter line(s) beyond its events")

        # 2. the other outcomes, per dedup key.
        per_key: dict[str, list[CapturedOutcome]] = defaultdict(list)
        for ln in lines:
            if ln.outcome == "dead_lettered":
                continue
            line_key = ln.dedup_key
            if line_key is None and ln.execution_name:
                line_key = ln.execution_name.rsplit(REPLAY_MARK, 1)[0]
            if line_key is None or line_key not in by_key:
                foreign += 1
                continue
            per_key[line_key].append(ln)
        for key, events in by_key.items():
            pending = [e for e in events if e.outcome is None]
            key_lines = per_key.get(key, [])
            execution_lines = [ln for ln in key_lines if ln.execution_name]
            other_lines = [ln for ln in key_lines if not ln.execution_name]
            final_execution_lines = execution_lines
            replays = [ln for ln in execution_lines if REPLAY_MARK in (ln.execution_name or "")]
            if replays:
                # A local replay (new execution, same input) supersedes what the replayed executions ended with.
                latest = max(replays, key=lambda ln: (_replay_number(ln.execution_name), ln.seq))
                final_execution_lines = [latest]
                superseded += len(execution_lines) - 1
            ordered = final_execution_lines + other_lines
            for ln, e in zip(ordered, pending, strict=False):
                e.outcome = ln.outcome
                e.reason = ln.reason
                e.execution = ln.execution_name
                if ln in replays:
                    e.notes.append(
                        "applied by a local replay of its failed execution"
                        if ln.outcome == "applied"
                        else f"{ln.outcome} after a local replay"
                    )
            if len(ordered) > len(pending):
                over.append(
                    f"dedup key {key}: {len(ordered)} outcomes ({', '.join(ln.outcome for ln in ordered)}) "
                    f"for {len(pending)} event(s)"
                )
        counts = Counter(e.outcome for e in sent if e.outcome)
        unaccounted = [e for e in sent if e.outcome is None]
        return Accounting(len(sent), counts, unaccounted, over, foreign, superseded)


def _replay_number(name: str | None) -> int:
    if not name or REPLAY_MARK not in name:
        return 0
    tail = name.rsplit(REPLAY_MARK, 1)[1]
    return int(tail) if tail.isdigit() else 0


def dead_letter_from_message(message: dict[str, Any]) -> DeadLetter:
    """A DLQ message: the body is the envelope as SQS held it; the reason is a message attribute when
    the dispatcher put it there, none when SQS redrove it after maxReceiveCount."""
    body = message.get("Body") or ""
    event_id = None
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        candidate = parsed.get("id")
        if not isinstance(candidate, str):
            for nested in ("body", "envelope", "event", "message"):
                inner = parsed.get(nested)
                if isinstance(inner, str):
                    try:
                        inner = json.loads(inner)
                    except ValueError:
                        inner = None
                if isinstance(inner, dict) and isinstance(inner.get("id"), str):
                    candidate = inner["id"]
                    break
        event_id = candidate if isinstance(candidate, str) else None
    reason = original = None
    for name, value in (message.get("MessageAttributes") or {}).items():
        if reason is None and ("reason" in name.lower() or name.lower() in ("error", "errormessage")):
            reason = value.get("StringValue")
        if name == "OriginalMessageId":
            original = value.get("StringValue")
    return DeadLetter(message.get("MessageId", ""), event_id, reason, body, original)


def peek_queue(sqs: Any, queue_url: str, *, hold_seconds: int = 20) -> list[dict[str, Any]]:
    """Every message of a queue, left on it: received (hidden) page by page, then made visible again."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    try:
        for _ in range(1000):
            got = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hold_seconds,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not got:
                break
            for m in got:
                seen.setdefault(m["MessageId"], m)
                handles.append(m["ReceiptHandle"])
    finally:
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for n, h in enumerate(handles[start : start + 10])
            ]
            try:
                sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
            except Exception:  # noqa: BLE001 - a message deleted meanwhile is fine
                pass
    return list(seen.values())


__all__ = [
    "Accounting",
    "CapturedOutcome",
    "DeadLetter",
    "Ledger",
    "OUTCOMES",
    "OutcomeCapture",
    "TrackedEvent",
    "dead_letter_from_message",
    "peek_queue",
]
