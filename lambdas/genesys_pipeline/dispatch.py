"""The dispatcher's logic: one SQS batch of Genesys events -> Step Functions executions.

Per record, exactly one of:
- started: ``StartExecution`` with name = dedup key; the processor records the outcome later;
- duplicate: ``ExecutionAlreadyExists``, the same dedup key earlier in the batch, or an
  idempotent success: StartExecution on a Standard machine with the name and input of a
  *running* execution succeeds and returns that execution's response. When its
  ``startDate`` is before this SQS message was first received, another copy of the event
  started it (a duplicate); otherwise this message itself did, on an earlier receive or an
  SDK retry (the dispatcher died, or the response was lost), and it is counted as started.
  The same holds when that execution has closed (``ExecutionAlreadyExists``) and this message
  is a redelivery: ``DescribeExecution`` tells its own start (same input, started at or after
  the message's first receive) from another copy's, so a dispatcher that died after its
  StartExecution landed does not add a duplicate to the execution's outcome;
- filtered: topic or queue outside this environment's sets (defense in depth behind the
  EventBridge rule, which may be edited by hand or lag a config change);
- stale: older than ``max_event_age_seconds``, measured from the event's own time;
- dead-lettered: ``InvalidEvent`` (malformed, unsupported, wrong org): sent to the DLQ with
  its reason, body unchanged, then acknowledged, so it is neither retried forever nor lost;
- deferred (not an outcome): with a request budget (genesys_pipeline.budget), an event whose
  admission slot is in the future is re-sent to the main queue with DelaySeconds, pre-paid,
  and acknowledged. It comes back as a new message (receive count 1, so a burst never
  walks it toward maxReceiveCount) and then ends in one of the outcomes here;
- failed back to SQS (listed in ``batchItemFailures``): throttling, a transient AWS error,
  or a DLQ or deferral send that failed. SQS redelivers it; after maxReceiveCount its redrive policy
  moves it to the DLQ. Nothing is deleted that did not land somewhere.

The batch runs in three steps: classify every record (pure, no I/O; with a budget, one
conditional write then schedules the batch's events), run the I/O (StartExecution, DLQ and
deferral sends) concurrently bounded by ``start_concurrency``, then let
Powertools' BatchProcessor report each precomputed result, on the calling thread,
where logging and metrics happen (neither is meant to be fed from worker threads).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from .aws_faults import THROTTLING_CODES, UNAVAILABLE_CODES
from .budget import MAX_DEFERRAL_SECONDS, RequestBudget, spend_best_effort
from .errors import InvalidEvent
from .events import event_time_of, parse_event
from .model import GenesysEvent
from .observability import logger, metrics, record_outcome
from .outcomes import (
    METRIC_BUDGET_DEFERRAL_SECONDS,
    METRIC_BUDGET_TOKENS_RESERVED,
    METRIC_BUDGET_UNAVAILABLE,
    METRIC_EVENTS_DEFERRED,
    METRIC_EVENTS_RECEIVED,
    METRIC_START_EXECUTION_THROTTLED,
    Outcome,
)
from .settings import DispatcherSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

DEAD_LETTER_STAGE = "dispatcher"
# SQS: at most 10 message attributes per message. Ours take 4; the original's String
# attributes fill the rest (Binary ones are dropped: Lambda hands them over base64-encoded).
SQS_MAX_MESSAGE_ATTRIBUTES = 10
ATTR_REASON = "DeadLetterReason"
ATTR_STAGE = "DeadLetterStage"
ATTR_ORIGINAL_MESSAGE_ID = "OriginalMessageId"
ATTR_RECEIVE_COUNT = "ApproximateReceiveCount"
# In the execution input: the SQS message that started the execution (execution_input).
MESSAGE_ID_FIELD = "sqsMessageId"
# On a deferred event: the admission slot (epoch seconds) it has already paid for.
ATTR_BUDGET_SLOT = "BudgetSlot"
# On a deferred event: the delivery it continues (the first SQS message's id, and when that was first
# received, epoch ms). A deferral copy and its original are one delivery: if the original comes back
# (its dispatcher died after the deferral), whichever of the two starts the execution, the other finds it
# as its own start, not as another copy's (the execution input carries the delivery's message id).
ATTR_DELIVERY_ID = "DeliveryMessageId"
ATTR_DELIVERY_RECEIVED = "DeliveryFirstReceived"
DELIVERY_ATTRIBUTES = (ATTR_BUDGET_SLOT, ATTR_DELIVERY_ID, ATTR_DELIVERY_RECEIVED)
# A pre-paid event that comes back this much before its slot still starts (clocks of two
# containers differ by milliseconds; DelaySeconds is rounded up, so it is never early otherwise).
PREPAID_EARLY_SECONDS = 1.0
# SendMessageBatch: at most 10 entries and 256 KiB in all.
SQS_BATCH_ENTRIES = 10
SQS_BATCH_BYTES = 256 * 1024 - 8 * 1024  # room for the attributes


# ---------------------------------------------------------------------------- ports


class StartResult(str, Enum):
    STARTED = "started"  # by this call, or by an earlier receive of the same SQS message
    ALREADY_EXISTS = "already_exists"  # a Standard machine keeps names for 90 days
    ALREADY_RUNNING = "already_running"  # idempotent success: another copy started it, still running


class TransientDispatchError(Exception):
    """An AWS call that may succeed later: fail the record, SQS redelivers it."""


class StartExecutionThrottled(TransientDispatchError):
    pass


class StartExecutionUnavailable(TransientDispatchError):
    """5xx, ServiceUnavailable, connection errors and timeouts."""


class ExecutionStarter(Protocol):
    def start_execution(
        self, name: str, execution_input: str, *, not_before: datetime | None = None, redelivered: bool = False
    ) -> StartResult:
        """Start an execution named ``name``; raise a ``TransientDispatchError`` when worth retrying.

        ``not_before``: when this record was first received; a running execution that started
        earlier was started by someone else (``ALREADY_RUNNING``). None: any success is ``STARTED``.
        ``redelivered``: this message was received before (a dispatcher died or failed after its
        StartExecution landed); an existing execution with this input that started at or after
        ``not_before`` is then its own (``STARTED``), even when it has closed.
        """
        ...


class DeadLetterSink(Protocol):
    def send(self, body: str, attributes: Mapping[str, str]) -> None:
        """Put ``body`` on the dead-letter queue with String message ``attributes``; raise when it did not land."""
        ...


@dataclass(frozen=True)
class DeferredMessage:
    message_id: str  # the original's, to map the result back
    body: str
    delay_seconds: int
    attributes: Mapping[str, str]


class DeferralSink(Protocol):
    def send_delayed(self, messages: list[DeferredMessage]) -> dict[str, BaseException | None]:
        """Put each message on the main queue with its DelaySeconds (at most 10 per call); message id -> error or None."""
        ...


# ---------------------------------------------------------------------------- classification


class Action(str, Enum):
    START = "start"
    DEAD_LETTER = "dead_letter"
    FILTERED = "filtered"
    STALE = "stale"
    DUPLICATE_IN_BATCH = "duplicate_in_batch"
    DEFER = "defer"  # wait in the main queue until the budget's slot (not an outcome)


@dataclass(frozen=True)
class RecordPlan:
    message_id: str
    action: Action
    event: GenesysEvent | None = None
    reason: str | None = None
    primary: str | None = None  # DUPLICATE_IN_BATCH: message id of the batch's first record with this key
    dead_letter_attributes: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    first_received: datetime | None = None  # the delivery's SQS ApproximateFirstReceiveTimestamp
    prepaid_slot: float | None = None  # START: a deferred event's slot, already paid for
    delay_seconds: int | None = None  # DEFER
    slot: float | None = None  # DEFER: the slot paid for (None beyond the horizon: admitted again on return)
    message_attributes: Mapping[str, str] = field(default_factory=dict)  # the record's String attributes
    receive_count: int = 1  # ApproximateReceiveCount: > 1 when an earlier dispatch of this message failed
    delivery_id: str = ""  # the delivery's first message id (a deferral copy's original; else message_id)

    @property
    def delivery(self) -> str:
        """The message id the delivery began with: this one's, unless it is a deferral copy."""
        return self.delivery_id or self.message_id

    @property
    def redelivered(self) -> bool:
        """Received before: this message (an earlier dispatch failed) or its delivery (a deferral copy)."""
        return self.receive_count > 1 or self.delivery != self.message_id


@dataclass(frozen=True)
class RecordResult:
    outcome: Outcome | None  # None: an execution was started (the processor records the outcome) or deferred
    error: BaseException | None = None
    reason: str | None = None
    deferred: bool = False


def filter_reason(event: GenesysEvent, settings: DispatcherSettings) -> str | None:
    """Why this environment does not process ``event``, or None."""
    if event.topic not in settings.topics:
        return f"topic {event.topic} is not in ALLOWED_TOPICS"
    # An event that carries no queue (customer.end, ...) cannot be filtered by queue; the
    # topic set governs it. Genesys puts queueId on the acd topics.
    if settings.queue_ids and event.queue_id is not None and event.queue_id not in settings.queue_ids:
        return f"queue {event.queue_id} is not in ALLOWED_QUEUE_IDS"
    return None


def stale_reason(event: GenesysEvent, max_age_seconds: int, now: datetime) -> str | None:
    age = now - event_time_of(event)
    if age > timedelta(seconds=max_age_seconds):
        return f"event is {_duration(age)} old (eventTime {event.event_time}); max age is {_duration(timedelta(seconds=max_age_seconds))}"
    return None


def dead_letter_attributes(record: Mapping[str, Any], reason: str) -> dict[str, str]:
    ours = {
        ATTR_REASON: reason,
        ATTR_STAGE: DEAD_LETTER_STAGE,
        ATTR_ORIGINAL_MESSAGE_ID: str(record.get("messageId", "")),
        ATTR_RECEIVE_COUNT: str((record.get("attributes") or {}).get("ApproximateReceiveCount", "")),
    }
    ours = {k: v for k, v in ours.items() if v}
    kept: dict[str, str] = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        if len(ours) + len(kept) >= SQS_MAX_MESSAGE_ATTRIBUTES:
            break
        if name in ours or not isinstance(value, Mapping):
            continue
        if str(value.get("dataType", "")).startswith("String") and isinstance(value.get("stringValue"), str):
            kept[name] = value["stringValue"]
    return {**kept, **ours}


def string_attributes(record: Mapping[str, Any]) -> dict[str, str]:
    """The record's String message attributes (Lambda's camelCase shape)."""
    kept: dict[str, str] = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        if (
            isinstance(value, Mapping)
            and str(value.get("dataType", "")).startswith("String")
            and isinstance(value.get("stringValue"), str)
        ):
            kept[name] = value["stringValue"]
    return kept


def prepaid_slot_of(attributes: Mapping[str, str]) -> float | None:
    raw = attributes.get(ATTR_BUDGET_SLOT)
    try:
        slot = float(raw) if raw is not None else None
    except ValueError:
        return None
    return slot if slot is not None and math.isfinite(slot) else None


def deferral_attributes(plan: RecordPlan, slot: float | None) -> dict[str, str]:
    kept = {k: v for k, v in plan.message_attributes.items() if k not in DELIVERY_ATTRIBUTES}
    kept = dict(list(kept.items())[: SQS_MAX_MESSAGE_ATTRIBUTES - len(DELIVERY_ATTRIBUTES)])
    if slot is not None:
        kept[ATTR_BUDGET_SLOT] = f"{slot:.3f}"
    kept[ATTR_DELIVERY_ID] = plan.delivery
    if plan.first_received is not None:
        kept[ATTR_DELIVERY_RECEIVED] = str(int(plan.first_received.timestamp() * 1000))
    return kept


def delivery_first_received(attributes: Mapping[str, str], record: Mapping[str, Any]) -> datetime | None:
    """When the record's delivery was first received: a deferral copy's original, else the record itself."""
    return _epoch_ms(attributes.get(ATTR_DELIVERY_RECEIVED)) or first_received(record)


def deferral_delay(slot: float | None, now: float) -> int:
    if slot is None:
        return MAX_DEFERRAL_SECONDS
    return max(1, min(MAX_DEFERRAL_SECONDS, math.ceil(slot - now)))


# ---------------------------------------------------------------------------- the dispatcher


class Dispatcher:
    def __init__(
        self,
        settings: DispatcherSettings,
        starter: ExecutionStarter,
        dead_letters: DeadLetterSink,
        *,
        budget: RequestBudget | None = None,
        deferrals: DeferralSink | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        if (budget is None) != (deferrals is None):
            raise ValueError("a request budget needs a deferral sink (the main queue), and the other way round")
        self.settings = settings
        self._starter = starter
        self._dead_letters = dead_letters
        self._budget = budget
        self._deferrals = deferrals
        self._now = now

    def plan_batch(self, records: list[Mapping[str, Any]]) -> list[RecordPlan]:
        now = self._now()
        first_with_key: dict[str, str] = {}
        plans = []
        for record in records:
            plan = self.plan(record, now)
            if plan.action is Action.START:
                assert plan.event is not None  # a START plan has its event
                key = plan.event.dedup_key
                # A redelivered record asks Step Functions itself: it may have started the execution before its
                # dispatcher died, and then it is that start, not a duplicate of another copy in this batch.
                if key in first_with_key and not plan.redelivered:
                    plan = RecordPlan(
                        plan.message_id, Action.DUPLICATE_IN_BATCH, plan.event, primary=first_with_key[key]
                    )
                else:
                    first_with_key.setdefault(key, plan.message_id)
            plans.append(plan)
        return plans

    def plan(self, record: Mapping[str, Any], now: datetime) -> RecordPlan:
        message_id = str(record.get("messageId", ""))
        body = record.get("body")
        text = body if isinstance(body, str) else ""  # an SQS message body is a string
        try:
            event = parse_event(body if body is not None else "", org_id=self.settings.org_id)
        except InvalidEvent as exc:
            return RecordPlan(
                message_id,
                Action.DEAD_LETTER,
                reason=exc.reason,
                dead_letter_attributes=dead_letter_attributes(record, exc.reason),
                body=text,
            )
        reason = filter_reason(event, self.settings)
        if reason:
            return RecordPlan(message_id, Action.FILTERED, event, reason)
        reason = stale_reason(event, self.settings.max_event_age_seconds, now)
        if reason:
            return RecordPlan(message_id, Action.STALE, event, reason)
        attributes = string_attributes(record)
        return RecordPlan(
            message_id,
            Action.START,
            event,
            body=text,
            prepaid_slot=prepaid_slot_of(attributes),
            message_attributes=attributes,
            receive_count=_receive_count(record),
            first_received=delivery_first_received(attributes, record),
            delivery_id=attributes.get(ATTR_DELIVERY_ID, ""),
        )

    def admit(self, plans: list[RecordPlan]) -> list[RecordPlan]:
        """With a budget: keep START for events whose slot is now, turn the others into DEFER.

        One conditional write reserves slots for every new event of the batch; a pre-paid event
        (back from a deferral) spends nothing. The dispatcher never sleeps on the budget, so a
        batch is held for milliseconds, far within the queue's visibility timeout.
        """
        if self._budget is None:
            return plans
        unpaid = [p for p in plans if p.action is Action.START and p.prepaid_slot is None]
        # A message SQS hands out again (an earlier dispatch failed) is never deferred: a deferral is a
        # new message, so it would reset the receive count and a poison message would never reach the
        # DLQ. It starts now and its requests are charged as debt.
        redelivered = [p for p in unpaid if p.receive_count > 1]
        new = [p for p in unpaid if p.receive_count <= 1]
        tokens = self.settings.requests_per_event
        if redelivered:
            spend_best_effort(self._budget, len(redelivered) * tokens)
        try:
            slots = self._budget.reserve(len(new), tokens)
        except Exception as exc:  # noqa: BLE001 - fail open: a DLQ'd burst would be worse than a few 429s
            metrics.add_metric(name=METRIC_BUDGET_UNAVAILABLE, unit=MetricUnit.Count, value=1)
            logger.warning(
                "request budget unavailable; starting the batch's events unscheduled",
                extra={"error_type": type(exc).__name__, "events": len(new)},
            )
            return plans
        now = self._budget.now()  # after the reservation: a slot of "now" is never in the future
        if slots:
            metrics.add_metric(name=METRIC_BUDGET_TOKENS_RESERVED, unit=MetricUnit.Count, value=len(slots) * tokens)
        slot_of = {p.message_id: (slots[i] if i < len(slots) else None) for i, p in enumerate(new)}
        admitted = []
        for plan in plans:
            if plan.action is not Action.START or (plan.prepaid_slot is None and plan.receive_count > 1):
                admitted.append(plan)
                continue
            slot: float | None
            if plan.prepaid_slot is not None:
                slot, due = plan.prepaid_slot, plan.prepaid_slot <= now + PREPAID_EARLY_SECONDS
            else:
                slot = slot_of[plan.message_id]
                due = slot is not None and slot <= now
            if due:
                admitted.append(plan)
            else:
                admitted.append(
                    RecordPlan(
                        plan.message_id,
                        Action.DEFER,
                        plan.event,
                        body=plan.body,
                        delay_seconds=deferral_delay(slot, now),
                        slot=slot,
                        message_attributes=plan.message_attributes,
                        first_received=plan.first_received,
                        delivery_id=plan.delivery_id,
                    )
                )
        return admitted

    def execute(self, plans: list[RecordPlan]) -> dict[str, RecordResult]:
        """message id -> result; the AWS calls run concurrently, at most ``start_concurrency`` at a time."""
        results: dict[str, RecordResult] = {}
        io_plans: list[Any] = [p for p in plans if p.action in (Action.START, Action.DEAD_LETTER)]
        io_plans += _send_groups([p for p in plans if p.action is Action.DEFER])
        if len(io_plans) > 1 and self.settings.start_concurrency > 1:
            workers = min(self.settings.start_concurrency, len(io_plans))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dispatch") as pool:
                for result in pool.map(self._act_on, io_plans):
                    results.update(result)
        else:
            for item in io_plans:
                results.update(self._act_on(item))
        for plan in plans:
            if plan.action is Action.FILTERED:
                results[plan.message_id] = RecordResult(Outcome.FILTERED)
            elif plan.action is Action.STALE:
                results[plan.message_id] = RecordResult(Outcome.STALE)
            elif plan.action is Action.DUPLICATE_IN_BATCH:
                assert plan.primary is not None  # a DUPLICATE_IN_BATCH plan names its batch's first record
                primary = results[plan.primary]
                # Acknowledge the copy only once the first record landed; if that one goes back to
                # SQS, so does the copy (it becomes an ordinary duplicate on redelivery).
                results[plan.message_id] = RecordResult(Outcome.DUPLICATE) if primary.error is None else primary
        return results

    def _act_on(self, item: RecordPlan | tuple[RecordPlan, ...]) -> dict[str, RecordResult]:
        if isinstance(item, tuple):
            return self._defer(item)
        return {item.message_id: self._act(item)}

    def _defer(self, group: tuple[RecordPlan, ...]) -> dict[str, RecordResult]:
        # Runs on a worker thread, like _act. One SendMessageBatch for up to 10 deferrals.
        messages = [
            DeferredMessage(p.message_id, p.body, p.delay_seconds or 1, deferral_attributes(p, p.slot)) for p in group
        ]
        assert self._deferrals is not None  # DEFER plans come only with a budget, which comes with the sink
        try:
            errors = self._deferrals.send_delayed(messages)
        except Exception as exc:  # noqa: BLE001 - the whole group goes back to SQS
            errors = {p.message_id: exc for p in group}
        return {
            p.message_id: RecordResult(None, errors.get(p.message_id), deferred=errors.get(p.message_id) is None)
            for p in group
        }

    def _act(self, plan: RecordPlan) -> RecordResult:
        # Runs on a worker thread: no logging or metrics here, only the call and its result.
        try:
            if plan.action is Action.START:
                assert plan.event is not None  # a START plan has its event
                started = self._starter.start_execution(
                    plan.event.dedup_key,
                    execution_input(plan.event, plan.delivery),
                    not_before=plan.first_received,
                    redelivered=plan.redelivered,
                )
                if started is StartResult.ALREADY_RUNNING:
                    return RecordResult(
                        Outcome.DUPLICATE,
                        reason="an execution with this name and input is already "
                        "running, started before this message was first received",
                    )
                return RecordResult(Outcome.DUPLICATE if started is StartResult.ALREADY_EXISTS else None)
            self._dead_letters.send(plan.body, plan.dead_letter_attributes)
            return RecordResult(Outcome.DEAD_LETTERED)
        except Exception as exc:  # noqa: BLE001 - one record's failure must not sink the others
            return RecordResult(None, exc)

    def dispatch(self, event: dict[str, Any], context: Any = None) -> PartialItemFailureResponse:
        """The SQS event -> ``{"batchItemFailures": [...]}`` for Lambda's partial batch response."""
        records = event.get("Records") if isinstance(event, Mapping) else None
        records = records if isinstance(records, list) else []
        metrics.add_metric(name=METRIC_EVENTS_RECEIVED, unit=MetricUnit.Count, value=len(records))
        plans = self.admit(self.plan_batch(records))
        by_id = {p.message_id: p for p in plans}
        results = self.execute(plans)

        def report(record: SQSRecord) -> None:
            plan, result = by_id[record.message_id], results[record.message_id]
            self._report(plan, result)

        # Without this, a batch in which every record failed raises BatchProcessingError: the
        # invocation errors out instead of returning the failures. Returning them keeps the
        # contract (each listed record is retried by SQS) and the error-rate alarm meaningful.
        # Imported on the first batch, not at module import (the cold-import budget, bench.coldstart).
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=report, processor=processor, context=context)

    def _report(self, plan: RecordPlan, result: RecordResult) -> None:
        event = plan.event
        # Identity on every line of this record; record_outcome also puts it in the typed OutcomeRecord.
        where: dict[str, Any] = {"message_id": plan.message_id}
        if event is not None:
            where.update(event_id=event.event_id, conversation_id=event.conversation_id, topic=event.topic)
        else:
            envelope_id = _envelope_id(plan.body)
            if envelope_id:
                where["event_id"] = envelope_id
        dedup_key = event.dedup_key if event else None
        if result.error is not None:
            if isinstance(result.error, StartExecutionThrottled):
                metrics.add_metric(name=METRIC_START_EXECUTION_THROTTLED, unit=MetricUnit.Count, value=1)
            stage = {Action.DEAD_LETTER: "dead-letter send", Action.DEFER: "deferral send"}.get(
                plan.action, "StartExecution"
            )
            logger.warning(
                f"{stage} failed; record left for SQS to redeliver",
                extra={
                    **where,
                    "dedup_key": dedup_key,
                    "error_type": type(result.error).__name__,
                    "error": str(result.error),
                },
            )
            raise result.error  # BatchProcessor lists the record in batchItemFailures
        if result.deferred:
            # Not an outcome either: the event comes back through the main queue and ends in one then.
            metrics.add_metric(name=METRIC_EVENTS_DEFERRED, unit=MetricUnit.Count, value=1)
            metrics.add_metric(
                name=METRIC_BUDGET_DEFERRAL_SECONDS, unit=MetricUnit.Seconds, value=plan.delay_seconds or 0
            )
            logger.info(
                "event deferred by the request budget",
                extra={
                    **where,
                    "dedup_key": dedup_key,
                    "delay_seconds": plan.delay_seconds,
                    "prepaid": plan.slot is not None,
                },
            )
            return
        if result.outcome is None:
            # Not an outcome: the processor (applied) or the error logger (failed) records that.
            logger.info("execution started", extra={**where, "dedup_key": dedup_key})
            return
        reason = plan.reason or result.reason
        if result.outcome is Outcome.DUPLICATE and reason is None:
            reason = (
                f"same dedup key as message {plan.primary} earlier in this batch"
                if plan.primary
                else "an execution with this name already exists (ExecutionAlreadyExists)"
            )
        record_outcome(result.outcome, dedup_key=dedup_key, reason=reason, **where)


def first_received(record: Mapping[str, Any]) -> datetime | None:
    """The record's ApproximateFirstReceiveTimestamp (epoch milliseconds), or None when absent."""
    return _epoch_ms((record.get("attributes") or {}).get("ApproximateFirstReceiveTimestamp"))


def _epoch_ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc) if value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


def _envelope_id(body: str) -> str | None:
    """Best effort: the envelope id of a body the parser refused, to name it in the outcome line."""
    try:
        envelope = json.loads(body)
    except Exception:  # noqa: BLE001 - any undecodable body simply has no id
        return None
    value = envelope.get("id") if isinstance(envelope, dict) else None
    return value if isinstance(value, str) and value else None


def _receive_count(record: Mapping[str, Any]) -> int:
    try:
        return int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def _send_groups(plans: list[RecordPlan]) -> list[tuple[RecordPlan, ...]]:
    """Deferrals in SendMessageBatch-sized groups (10 entries, 256 KiB)."""
    groups: list[tuple[RecordPlan, ...]] = []
    current: list[RecordPlan] = []
    size = 0
    for plan in plans:
        body_size = len(plan.body.encode())
        if current and (len(current) == SQS_BATCH_ENTRIES or size + body_size > SQS_BATCH_BYTES):
            groups.append(tuple(current))
            current, size = [], 0
        current.append(plan)
        size += body_size
    if current:
        groups.append(tuple(current))
    return groups


def execution_input(event: GenesysEvent, message_id: str | None = None) -> str:
    # Deterministic text per SQS message: a redelivery of the message that started the execution is an
    # idempotent StartExecution (same name and input), its own start. Any other copy of the event, even a
    # byte-identical one (EventBridge delivers at least once), has another input: a duplicate. Without the
    # message id, a copy received before the start and redelivered after it took the start as its own.
    data = event.to_execution_input()
    if message_id:
        data[MESSAGE_ID_FIELD] = message_id
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m"


# ---------------------------------------------------------------------------- boto3 adapters
# Clients are made once per container by the handler. Their botocore retries are kept small:
# a record that still fails goes back to SQS, which retries it anyway, and a long in-Lambda
# backoff would only hold the whole batch. Throttling and unavailable codes: aws_faults.


def client_config(max_pool_connections: int) -> Config:
    # The pool must hold one connection per concurrent StartExecution, or urllib3 discards
    # connections ("Connection pool is full") and every batch pays new TLS handshakes.
    return Config(
        retries={"mode": "standard", "max_attempts": 2},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=max(10, max_pool_connections),
    )


def stepfunctions_client(max_pool_connections: int = 10) -> Any:
    return boto3.client("stepfunctions", config=client_config(max_pool_connections))


def sqs_client(max_pool_connections: int = 10) -> Any:
    return boto3.client("sqs", config=client_config(max_pool_connections))


class StepFunctionsExecutionStarter:
    def __init__(self, client: Any, state_machine_arn: str):
        self._client = client
        self._state_machine_arn = state_machine_arn

    def start_execution(
        self, name: str, execution_input: str, *, not_before: datetime | None = None, redelivered: bool = False
    ) -> StartResult:
        try:
            response = self._client.start_execution(
                stateMachineArn=self._state_machine_arn, name=name, input=execution_input
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code == "ExecutionAlreadyExists":
                # Same name, different input (another envelope id) or a closed execution: another copy,
                # unless this very message started it on an earlier receive (it was redelivered).
                if redelivered and not_before is not None and self._started_by(name, execution_input, not_before):
                    return StartResult.STARTED
                return StartResult.ALREADY_EXISTS
            if code in THROTTLING_CODES or status == 429:
                raise StartExecutionThrottled(f"StartExecution throttled ({code})") from exc
            if code in UNAVAILABLE_CODES or status >= 500:
                raise StartExecutionUnavailable(f"StartExecution unavailable ({code or status})") from exc
            raise
        except (BotoConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
            raise StartExecutionUnavailable(f"StartExecution unreachable: {type(exc).__name__}") from exc
        # Same name and input as a running execution: AWS answers success with that execution's own
        # response (Step Functions API reference, StartExecution), so only its startDate tells.
        start_date = response.get("startDate") if isinstance(response, Mapping) else None
        if not_before is not None and isinstance(start_date, datetime) and _utc(start_date) < not_before:
            return StartResult.ALREADY_RUNNING
        return StartResult.STARTED

    def _started_by(self, name: str, execution_input: str, first_received: datetime) -> bool:
        """Whether the closed execution ``name`` is this message's own: same input, started at or after the
        message was first received (another copy's started before it, or has another envelope id)."""
        arn = self._state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        try:
            described = self._client.describe_execution(executionArn=arn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code in THROTTLING_CODES or code in UNAVAILABLE_CODES or status == 429 or status >= 500:
                raise StartExecutionUnavailable(f"DescribeExecution unavailable ({code or status})") from exc
            raise
        except (BotoConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
            raise StartExecutionUnavailable(f"DescribeExecution unreachable: {type(exc).__name__}") from exc
        start_date = described.get("startDate")
        return (
            described.get("input") == execution_input
            and isinstance(start_date, datetime)
            and _utc(start_date) >= first_received
        )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class SqsDeadLetterSink:
    def __init__(self, client: Any, queue_url: str):
        self._client = client
        self._queue_url = queue_url

    def send(self, body: str, attributes: Mapping[str, str]) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )


class SqsDeferralSink:
    """Deferred events back onto the main queue, delayed: SQS is the buffer where waiting is cheap."""

    def __init__(self, client: Any, queue_url: str):
        self._client = client
        self._queue_url = queue_url

    def send_delayed(self, messages: list[DeferredMessage]) -> dict[str, BaseException | None]:
        entries = [
            {
                "Id": str(n),
                "MessageBody": m.body,
                "DelaySeconds": m.delay_seconds,
                "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in m.attributes.items()},
            }
            for n, m in enumerate(messages)
        ]
        response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        errors: dict[str, BaseException | None] = {m.message_id: None for m in messages}
        for failed in response.get("Failed", []):
            message = messages[int(failed["Id"])]
            errors[message.message_id] = TransientDispatchError(
                f"deferral send failed: {failed.get('Code')} {failed.get('Message', '')}".strip()
            )
        return errors
