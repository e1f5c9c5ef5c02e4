"""``gcpipe send``: inject Genesys EventBridge envelopes into an environment's pipeline.

Route. A custom ``PutEvents`` may not use an ``aws.`` source, and a partner
bus only accepts its partner's events, so events cannot be re-put onto the
Genesys bus. Instead, for each event:

1. validate it with the pipeline's own parser (``genesys_pipeline.events``) and
   check its org against the environment's (the dispatcher's ``GENESYS_ORG_ID``);
2. drop duplicates within the input (same dedup key as the dispatcher computes);
3. evaluate the deployed rule's own event pattern (see ``rule.py``): events the
   rule would not deliver are counted as filtered-by-rule and not sent;
4. send the rest straight to the main SQS queue with ``SendMessageBatch``, the
   original envelope (the input line's exact text) as the body, just as the
   rule's SQS target delivers it. The dispatcher's validation, dedup key and
   defense-in-depth filter all still apply downstream.

Every input line read gets exactly one audit record: accepted, rejected,
duplicate, filtered or failed, with the reason, line number, dedup key and the
SQS request id of the call that accepted it. Blank lines are skipped (counted,
no record).

Stopping early. Ctrl-C (KeyboardInterrupt) and an endpoint that refuses every
connection for ``UNREACHABLE_AFTER_SECONDS`` both stop the run the same way:
nothing more is read, entries not yet accepted are recorded as failed with the
reason, and the report says why (``stopped``). Re-sending the same file is then
safe: the lines SQS accepted carry the same dedup keys, which the dispatcher
absorbs as duplicates.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, EndpointConnectionError

from genesys_pipeline.errors import InvalidEvent

from ..sending import EventSender
from .rule import RuleMatcher
from .target import Target
from .validation import Parser, org_of_source

# SQS limits (Amazon SQS Developer Guide, "Amazon SQS message quotas" and the
# SendMessageBatch API reference): at most 10 entries per SendMessageBatch call,
# and 256 KiB (262,144 bytes) per message and for the sum of all messages in one
# call. (SQS raised its own cap to 1 MiB in 2025, but an event that arrives via
# EventBridge is itself capped at 256 KiB per PutEvents entry, so 256 KiB is
# the size an event can have on the real route; larger is not a Genesys event.)
SQS_MAX_BATCH_ENTRIES = 10
SQS_MAX_MESSAGE_BYTES = 262_144
SQS_MAX_BATCH_BYTES = 262_144

ACCEPTED, REJECTED, DUPLICATE, FILTERED, FAILED = "accepted", "rejected", "duplicate", "filtered", "failed"
STATUSES = (ACCEPTED, REJECTED, DUPLICATE, FILTERED, FAILED)
# Why a run stopped before the end of its input (SendReport.stopped).
INTERRUPTED, UNREACHABLE = "interrupted", "unreachable"
# A refused connection is not a transient SQS fault: the endpoint is gone (a stopped local
# stack, a wrong URL). Retried this long, across batches, then the run stops.
UNREACHABLE_AFTER_SECONDS = 5.0
_UNREACHABLE_ERRORS = (EndpointConnectionError, ConnectionClosedError)


@dataclass(frozen=True)
class Limits:
    max_entries: int = SQS_MAX_BATCH_ENTRIES
    max_message_bytes: int = SQS_MAX_MESSAGE_BYTES
    max_batch_bytes: int = SQS_MAX_BATCH_BYTES


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 10.0

    unreachable_after: float = UNREACHABLE_AFTER_SECONDS

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter")."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class ConnectionWatch:
    """Since when every call has failed to connect; any call that reaches the endpoint resets it.
    Shared by the sender's threads, so the grace period runs across batches."""

    def __init__(self, grace_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.grace_seconds, self._clock = grace_seconds, clock
        self._refused_since: float | None = None
        self._lock = threading.Lock()

    def reached(self) -> None:
        with self._lock:
            self._refused_since = None

    def refused(self) -> bool:
        """Record a failed connection; True once connections have failed for the whole grace period."""
        with self._lock:
            now = self._clock()
            if self._refused_since is None:
                self._refused_since = now
            return now - self._refused_since >= self.grace_seconds


@dataclass
class Outcome:
    line: int
    status: str
    reason: str | None = None
    dedup_key: str | None = None
    event_id: str | None = None
    conversation_id: str | None = None
    request_id: str | None = None
    message_id: str | None = None
    duplicate_of: int | None = None
    attempts: int | None = None

    def record(self) -> dict[str, Any]:
        data = {
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "line": self.line,
            "status": self.status,
            "reason": self.reason,
            "dedup_key": self.dedup_key,
            "request_id": self.request_id,
        }
        for key in ("event_id", "conversation_id", "message_id", "duplicate_of", "attempts"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass
class Pending:
    line: int
    body: str
    size: int
    dedup_key: str
    event_id: str
    conversation_id: str


class AuditLog:
    """One JSON line per input line, written as outcomes are known (so a crash mid-run
    still leaves a record of what was sent). Thread-safe."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, outcome: Outcome) -> None:
        with self._lock:
            self._fh.write(json.dumps(outcome.record(), separators=(",", ":")) + "\n")
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()


@dataclass
class SendReport:
    counts: Counter = field(default_factory=Counter)
    rejected: list[Outcome] = field(default_factory=list)
    duplicates: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    lines: int = 0
    calls: int = 0
    retried_entries: int = 0
    elapsed_seconds: float = 0.0
    audit_log: str | None = None
    parser: str | None = None
    rule: str | None = None
    rule_evaluations: int = 0
    expected_org: str | None = None
    blank_lines: int = 0
    stopped: str | None = None  # INTERRUPTED or UNREACHABLE when the run did not reach the end of its input
    stop_detail: str | None = None

    @property
    def ok(self) -> bool:
        return not self.counts[FAILED] and not self.counts[REJECTED] and not self.stopped

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            **{s: self.counts[s] for s in STATUSES},
            "calls": self.calls,
            "retried_entries": self.retried_entries,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "audit_log": self.audit_log,
            "parser": self.parser,
            "rule": self.rule,
            "rule_evaluations": self.rule_evaluations,
            "expected_org": self.expected_org,
            "blank_lines": self.blank_lines,
            "stopped": self.stopped,
            "stop_detail": self.stop_detail,
            "rejected_lines": [{"line": o.line, "reason": o.reason} for o in self.rejected],
            "duplicate_lines": [
                {"line": o.line, "duplicate_of": o.duplicate_of, "dedup_key": o.dedup_key} for o in self.duplicates
            ],
            "failed_lines": [{"line": o.line, "reason": o.reason} for o in self.failed],
        }


def read_lines(path: Path | str) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, decode error) for each line of a JSONL file ("-" is stdin)."""
    import sys

    fh = sys.stdin.buffer if str(path) == "-" else open(path, "rb")  # noqa: SIM115
    try:
        for number, raw in enumerate(fh, start=1):
            raw = raw.rstrip(b"\r\n")
            try:
                yield number, raw.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 ({exc.reason} at byte {exc.start})"
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def expected_org(target: Target, override: str | None = None) -> str | None:
    """The environment's Genesys org: --org-id, else the dispatcher's GENESYS_ORG_ID (the very check
    the dispatcher applies), else the org in a partner bus name; None means no org check."""
    if override:
        return override
    name = target.outputs.get("DispatcherFunctionName")
    if name:
        try:
            variables = (
                target.client("lambda")
                .get_function_configuration(FunctionName=name)
                .get("Environment", {})
                .get("Variables", {})
            )
        except ClientError:
            variables = {}
        if variables.get("GENESYS_ORG_ID", "").strip():
            return variables["GENESYS_ORG_ID"].strip()
    return org_of_source(target.outputs.get("EventBusName", ""))


class Sender:
    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        parser: Parser,
        matcher: RuleMatcher | None,
        audit: AuditLog,
        org_id: str | None = None,
        limits: Limits = Limits(),
        retry: RetryPolicy = RetryPolicy(),
        concurrency: int = 4,
        dry_run: bool = False,
        on_progress: Callable[[int], None] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        endpoint: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sqs, self.queue_url, self.parser, self.matcher, self.audit = sqs, queue_url, parser, matcher, audit
        self.queue = EventSender(
            sqs=sqs, queue_url=queue_url
        )  # the queue route: `send` bypasses the rule, as documented
        self.org_id, self.limits, self.retry, self.concurrency, self.dry_run = (
            org_id,
            limits,
            retry,
            concurrency,
            dry_run,
        )
        self.on_progress = on_progress or (lambda n: None)
        self._halted = threading.Event()
        # Backoff waits end early when the run is stopped (Ctrl-C, endpoint gone).
        self.sleep = sleep or self._halted.wait
        self.rng = rng or random.Random()
        self.endpoint = endpoint or "the SQS endpoint"
        self.report = SendReport()
        self._lock = threading.Lock()
        self._connections = ConnectionWatch(retry.unreachable_after, clock)

    # --- stopping early ---
    def halt(self, why: str, detail: str) -> None:
        """Stop: read no more lines; entries not yet accepted are recorded as failed with ``detail``."""
        with self._lock:
            if self.report.stopped is None:
                self.report.stopped, self.report.stop_detail = why, detail
        self._halted.set()

    @property
    def halted(self) -> bool:
        return self._halted.is_set()

    def _abandon(self, items: Iterable[Pending], attempts: int | None = None) -> None:
        for item in items:
            self._finish(
                Outcome(
                    item.line,
                    FAILED,
                    f"not sent: {self.report.stop_detail}",
                    item.dedup_key,
                    item.event_id,
                    item.conversation_id,
                    attempts=attempts,
                )
            )

    # --- outcomes ---
    def _finish(self, outcome: Outcome) -> None:
        self.audit.write(outcome)
        with self._lock:
            self.report.counts[outcome.status] += 1
            if outcome.status == REJECTED:
                self.report.rejected.append(outcome)
            elif outcome.status == DUPLICATE:
                self.report.duplicates.append(outcome)
            elif outcome.status == FAILED:
                self.report.failed.append(outcome)
        self.on_progress(1)

    # --- stage 1: validate, dedup, filter ---
    def _classify(self, lines: Iterable[tuple[int, str | None, str | None]]) -> Iterator[Pending]:
        seen: dict[str, int] = {}
        for number, text, decode_error in lines:
            self.report.lines += 1
            if decode_error or text is None:
                self._finish(Outcome(number, REJECTED, decode_error))
                continue
            if not text.strip():
                # A blank line is not an event (editors and `cat a b` leave them): skipped, no record.
                with self._lock:
                    self.report.blank_lines += 1
                self.on_progress(1)
                continue
            try:
                envelope = json.loads(text)
            except json.JSONDecodeError as exc:
                self._finish(Outcome(number, REJECTED, f"invalid JSON: {exc.msg} at column {exc.colno}"))
                continue
            try:
                event = self.parser(envelope)
            except InvalidEvent as exc:
                self._finish(Outcome(number, REJECTED, exc.reason, event_id=_str(envelope, "id")))
                continue
            common: dict[str, Any] = dict(
                dedup_key=event.dedup_key, event_id=event.event_id, conversation_id=event.conversation_id
            )
            if self.org_id and event.org_id != self.org_id:
                self._finish(
                    Outcome(
                        number,
                        REJECTED,
                        f"wrong org: event org {event.org_id}, environment org {self.org_id}",
                        **common,
                    )
                )
                continue
            size = len(text.encode("utf-8"))
            if size > self.limits.max_message_bytes:
                self._finish(
                    Outcome(
                        number,
                        REJECTED,
                        f"event is {size} bytes; the limit is {self.limits.max_message_bytes} bytes per message",
                        **common,
                    )
                )
                continue
            if event.dedup_key in seen:
                self._finish(
                    Outcome(
                        number,
                        DUPLICATE,
                        f"same dedup key as line {seen[event.dedup_key]}",
                        duplicate_of=seen[event.dedup_key],
                        **common,
                    )
                )
                continue
            seen[event.dedup_key] = number
            if self.matcher is not None and not self.matcher.matches(envelope):
                self._finish(
                    Outcome(
                        number, FILTERED, "filtered by rule: the deployed rule's event pattern does not match", **common
                    )
                )
                continue
            yield Pending(number, text, size, **common)

    # --- stage 2: chunk ---
    def _chunks(self, pending: Iterable[Pending]) -> Iterator[list[Pending]]:
        # The batch being filled lives on self: if the run stops half way, its lines were
        # read and must still get their audit records (run() abandons them).
        self._filling: list[Pending] = []
        batch_bytes = 0
        for item in pending:
            if self._filling and (
                len(self._filling) >= self.limits.max_entries or batch_bytes + item.size > self.limits.max_batch_bytes
            ):
                batch, self._filling, batch_bytes = self._filling, [], 0
                yield batch
            self._filling.append(item)
            batch_bytes += item.size
        if self._filling:
            batch, self._filling = self._filling, []
            yield batch

    # --- stage 3: send with retries ---
    def _send_batch(self, batch: list[Pending]) -> None:
        if self.halted:
            return self._abandon(batch)
        if self.dry_run:
            for item in batch:
                self._finish(
                    Outcome(
                        item.line, ACCEPTED, "dry run: not sent", item.dedup_key, item.event_id, item.conversation_id
                    )
                )
            return
        remaining = {f"l{item.line}": item for item in batch}  # entry ids are unique per batch
        last_error: dict[str, str] = {}
        attempt = calls = 0
        while attempt < self.retry.max_attempts:
            if calls:
                with self._lock:
                    self.report.retried_entries += len(remaining)
                self.sleep(self.retry.delay(min(attempt, calls), self.rng))
            if self.halted:
                return self._abandon(remaining.values(), attempts=calls)
            calls += 1
            try:
                with self._lock:
                    self.report.calls += 1
                response = self.queue.send_batch_to_queue(
                    [(entry_id, item.body) for entry_id, item in remaining.items()]
                )
            except _UNREACHABLE_ERRORS as exc:
                # Not counted as an attempt: bounded by time instead (the grace period).
                last_error = {entry_id: f"{type(exc).__name__}: {exc}" for entry_id in remaining}
                if self._connections.refused():
                    self.halt(
                        UNREACHABLE,
                        f"{self.endpoint} unreachable (connection refused for {self._connections.grace_seconds:g} s)",
                    )
                continue
            except (ClientError, BotoCoreError) as exc:
                # The whole call failed (throttled, network). If SQS had in fact taken some
                # entries, the resend duplicates them: the dispatcher's dedup key absorbs that.
                self._connections.reached()
                last_error = {entry_id: f"{type(exc).__name__}: {exc}" for entry_id in remaining}
                attempt += 1
                continue
            self._connections.reached()
            attempt += 1
            request_id = response.get("ResponseMetadata", {}).get("RequestId")
            for ok in response.get("Successful", []):
                accepted = remaining.pop(ok["Id"], None)
                if accepted is not None:
                    self._finish(
                        Outcome(
                            accepted.line,
                            ACCEPTED,
                            None,
                            accepted.dedup_key,
                            accepted.event_id,
                            accepted.conversation_id,
                            request_id=request_id,
                            message_id=ok.get("MessageId"),
                            attempts=calls,
                        )
                    )
            for bad in response.get("Failed", []):
                reason = f"{bad.get('Code')}: {bad.get('Message', '')}".strip()
                if bad.get("SenderFault"):
                    # The entry itself is wrong: resending cannot help.
                    refused = remaining.pop(bad["Id"], None)
                    if refused is not None:
                        self._finish(
                            Outcome(
                                refused.line,
                                FAILED,
                                f"rejected by SQS (sender fault) {reason}",
                                refused.dedup_key,
                                refused.event_id,
                                refused.conversation_id,
                                request_id=request_id,
                                attempts=calls,
                            )
                        )
                else:
                    last_error[bad["Id"]] = reason
            if not remaining:
                return
        for entry_id, item in remaining.items():
            self._finish(
                Outcome(
                    item.line,
                    FAILED,
                    f"gave up after {self.retry.max_attempts} attempts: {last_error.get(entry_id, 'unknown')}",
                    item.dedup_key,
                    item.event_id,
                    item.conversation_id,
                    attempts=self.retry.max_attempts,
                )
            )

    def run(self, lines: Iterable[tuple[int, str | None, str | None]]) -> SendReport:
        """Send every line; on Ctrl-C (or an unreachable endpoint) stop early and return the report
        of what was done, every line read having its audit record."""
        started = time.monotonic()
        in_flight: set[Future] = set()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="gcpipe-send") as pool:
            try:
                for batch in self._chunks(self._classify(lines)):
                    if self.halted:
                        self._abandon(batch)
                        break
                    # Bounded: never more than 2x concurrency batches in memory.
                    while len(in_flight) >= 2 * self.concurrency:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        for f in done:
                            f.result()
                    in_flight.add(pool.submit(self._send_batch, batch))
            except KeyboardInterrupt:
                self.halt(INTERRUPTED, "interrupted (Ctrl-C)")
            finally:
                if self.halted and getattr(self, "_filling", None):
                    self._abandon(self._filling)
                    self._filling = []
                try:
                    # Batches in flight end quickly once halted: the call under way completes,
                    # the rest of the batch is recorded as not sent.
                    for f in in_flight:
                        f.result()
                except KeyboardInterrupt:
                    self.halt(INTERRUPTED, "interrupted (Ctrl-C)")
                    for f in in_flight:
                        f.result()
        self.report.elapsed_seconds = time.monotonic() - started
        if self.matcher is not None:
            self.report.rule_evaluations = self.matcher.evaluations
        return self.report


def sqs_client(target: Target) -> Any:
    """The SQS client ``send`` uses: botocore's own retries off, because the Sender retries entries
    itself (jittered, bounded) and must see a refused connection at once, not after botocore's
    five attempts per call."""
    return target.session.client(
        "sqs",
        region_name=target.region,
        endpoint_url=target.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=32, connect_timeout=5),
    )


def _str(envelope: Any, key: str) -> str | None:
    return envelope.get(key) if isinstance(envelope, dict) and isinstance(envelope.get(key), str) else None


def default_audit_path(env: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(".gcpipe") / "audit" / f"send-{env}-{stamp}.jsonl"
