"""The dispatcher's logic with in-memory ports: outcomes per record, partial batch failures, concurrency."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from genesys_pipeline import observability
from genesys_pipeline.dispatch import (
    ATTR_REASON,
    Dispatcher,
    StartExecutionThrottled,
    StartExecutionUnavailable,
    StartResult,
)
from genesys_pipeline.outcomes import METRIC_EVENTS_RECEIVED, METRIC_START_EXECUTION_THROTTLED, Outcome
from genesys_pipeline.settings import DispatcherSettings

ORG = "6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
QUEUE = "a1b2c3d4-e5f6-4789-9123-4567890abcde"
ACD_END = "v2.detail.events.conversation.{id}.acd.end"
CUSTOMER_END = "v2.detail.events.conversation.{id}.customer.end"
NOW = datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc)


# ---------------------------------------------------------------- fakes and builders


class InMemoryStarter:
    """Step Functions' name semantics: a second start with a known name is ALREADY_EXISTS."""

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.names: dict[str, str] = {}
        self.calls = 0
        self.failures: dict[str, Exception] = {}
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def start_execution(self, name: str, execution_input: str, *, not_before=None, redelivered=False) -> StartResult:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.latency)
            if name in self.failures:
                raise self.failures[name]
            with self._lock:
                if name in self.names:
                    return StartResult.ALREADY_EXISTS
                self.names[name] = execution_input
                return StartResult.STARTED
        finally:
            with self._lock:
                self.in_flight -= 1


class InMemoryDeadLetters:
    def __init__(self):
        self.messages: list[tuple[str, dict[str, str]]] = []
        self.fail = False

    def send(self, body, attributes):
        if self.fail:
            raise ConnectionError("DLQ unreachable")
        self.messages.append((body, dict(attributes)))


def settings(**overrides) -> DispatcherSettings:
    values = dict(
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:genesys",
        dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/genesys-dlq",
        org_id=ORG,
        topics=frozenset({ACD_END, CUSTOMER_END}),
        queue_ids=frozenset({QUEUE}),
        max_event_age_seconds=5 * 24 * 3600,
        start_concurrency=10,
    )
    values.update(overrides)
    return DispatcherSettings(**values)


def fresh(envelope: dict, *, age: timedelta = timedelta(minutes=1), envelope_id: str | None = None) -> dict:
    """The envelope as if its event happened ``age`` before NOW."""
    out = copy.deepcopy(envelope)
    out["detail"]["eventBody"]["eventTime"] = int((NOW - age).timestamp() * 1000)
    if envelope_id:
        out["id"] = envelope_id
    return out


def record(body: dict | str, message_id: str, receive_count: int = 1) -> dict:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1763900000000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:genesys-main",
        "awsRegion": "us-east-1",
    }


def batch(*records: dict) -> dict:
    return {"Records": list(records)}


def failed_ids(response: dict) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


@pytest.fixture
def metric_names(monkeypatch):
    names: list[str] = []
    monkeypatch.setattr(
        observability.metrics, "add_metric", lambda name, unit, value: names.extend([name] * int(value))
    )
    return names


@pytest.fixture
def starter():
    return InMemoryStarter()


@pytest.fixture
def dead_letters():
    return InMemoryDeadLetters()


def dispatcher(starter, dead_letters, **overrides) -> Dispatcher:
    return Dispatcher(settings(**overrides), starter, dead_letters, now=lambda: NOW)


# ---------------------------------------------------------------- outcomes


def test_a_mixed_batch_gets_one_outcome_per_record(sample_events, starter, dead_letters, metric_names):
    # Given a batch: a valid acd.end, its redelivery, an attributes event (not in ALLOWED_TOPICS),
    # an acd.end of another queue, a six-day-old customer.end and a truncated body
    acd_end = fresh(sample_events["acd-end"])
    other_queue = fresh(sample_events["acd-end"])
    other_queue["detail"]["eventBody"]["queueId"] = "99999999-0000-4000-8000-000000000000"
    event = batch(
        record(acd_end, "valid"),
        record(fresh(sample_events["acd-end"], envelope_id="another-envelope-id"), "redelivered"),
        record(fresh(sample_events["attributes"]), "other-topic"),
        record(other_queue, "other-queue"),
        record(fresh(sample_events["customer-end"], age=timedelta(days=6)), "stale"),
        record(json.dumps(acd_end)[:100], "malformed"),
    )
    # When dispatched
    response = dispatcher(starter, dead_letters).dispatch(event)
    # Then every record is acknowledged, one execution is started, the malformed one is dead-lettered
    assert response == {"batchItemFailures": []}
    assert starter.calls == 1 and len(starter.names) == 1
    assert [body for body, _ in dead_letters.messages] == [json.dumps(acd_end)[:100]]
    assert sorted(metric_names) == sorted(
        [METRIC_EVENTS_RECEIVED] * 6
        + [
            Outcome.DUPLICATE.metric_name,
            Outcome.FILTERED.metric_name,
            Outcome.FILTERED.metric_name,
            Outcome.STALE.metric_name,
            Outcome.DEAD_LETTERED.metric_name,
        ]
    )


@pytest.fixture
def outcomes(monkeypatch):
    """Every record_outcome call the dispatcher makes: (outcome, dedup_key, reason, fields)."""
    from genesys_pipeline import dispatch

    calls: list[tuple] = []
    monkeypatch.setattr(
        dispatch,
        "record_outcome",
        lambda outcome, *, dedup_key, reason=None, **fields: calls.append((outcome, dedup_key, reason, fields)),
    )
    return calls


def test_each_record_gets_exactly_one_outcome_naming_its_event(sample_events, starter, dead_letters, outcomes):
    # Given a batch with one record of each kind the dispatcher itself concludes
    acd_end = fresh(sample_events["acd-end"])
    event = batch(
        record(acd_end, "valid"),
        record(fresh(sample_events["acd-end"], envelope_id="redelivery-id"), "copy"),
        record(fresh(sample_events["attributes"]), "filtered"),
        record(fresh(sample_events["customer-end"], age=timedelta(days=6)), "stale"),
        record(json.dumps({"id": "broken-envelope", "source": "nope"}), "malformed"),
    )
    # When dispatched
    dispatcher(starter, dead_letters).dispatch(event)
    # Then the started one has no outcome here (the processor records it) and each other exactly one
    by_message = {fields["message_id"]: (outcome, key, reason, fields) for outcome, key, reason, fields in outcomes}
    assert len(outcomes) == len(by_message) == 4
    assert by_message["copy"][0] is Outcome.DUPLICATE and "message valid" in by_message["copy"][2]
    assert by_message["filtered"][0] is Outcome.FILTERED and "ALLOWED_TOPICS" in by_message["filtered"][2]
    assert by_message["stale"][0] is Outcome.STALE and "max age" in by_message["stale"][2]
    assert by_message["malformed"][0] is Outcome.DEAD_LETTERED
    # And each names the event so the local runner can match it: event id and conversation id when known
    assert by_message["copy"][3]["event_id"] == "redelivery-id"
    assert by_message["copy"][3]["conversation_id"] == acd_end["detail"]["eventBody"]["conversationId"]
    assert by_message["stale"][3]["event_id"] == sample_events["customer-end"]["id"]
    assert by_message["malformed"][3]["event_id"] == "broken-envelope" and by_message["malformed"][1] is None


def test_the_execution_is_named_by_the_dedup_key_with_the_normalized_event_as_input(
    sample_events, starter, dead_letters
):
    envelope = fresh(sample_events["acd-end"])
    dispatcher(starter, dead_letters).dispatch(batch(record(envelope, "m1")))
    [(name, execution_input)] = starter.names.items()
    data = json.loads(execution_input)
    assert data["dedupKey"] == name and name.startswith("acd-end-2f7bf00a-")
    assert data["sqsMessageId"] == "m1"  # a redelivery of this message is its own start; another copy is not
    assert data["conversationId"] == "2f7bf00a-5a9e-4d1b-9f3c-7e2a1b0c9d8e" and data["queueId"] == QUEUE
    assert "tel:+13175550123" not in execution_input  # ani never reaches the console


def test_a_redelivery_in_a_later_batch_is_a_duplicate(sample_events, starter, dead_letters, metric_names):
    d = dispatcher(starter, dead_letters)
    d.dispatch(batch(record(fresh(sample_events["customer-end"]), "first")))
    # When the same event comes again with another envelope id
    response = d.dispatch(batch(record(fresh(sample_events["customer-end"], envelope_id="x"), "second")))
    # Then it succeeds as a duplicate and no second execution exists
    assert response == {"batchItemFailures": []}
    assert len(starter.names) == 1 and starter.calls == 2
    assert metric_names.count(Outcome.DUPLICATE.metric_name) == 1


def test_filtered_and_stale_records_never_start_an_execution(sample_events, starter, dead_letters):
    event = batch(
        record(fresh(sample_events["attributes"]), "filtered"),
        record(fresh(sample_events["acd-end"], age=timedelta(days=5, seconds=1)), "stale"),
    )
    assert dispatcher(starter, dead_letters).dispatch(event) == {"batchItemFailures": []}
    assert starter.calls == 0 and dead_letters.messages == []


def test_an_event_just_inside_the_max_age_is_started(sample_events, starter, dead_letters):
    event = batch(record(fresh(sample_events["acd-end"], age=timedelta(days=4, hours=23)), "late"))
    dispatcher(starter, dead_letters).dispatch(event)
    assert starter.calls == 1


def test_an_event_without_a_queue_is_not_filtered_by_the_queue_set(sample_events, starter, dead_letters):
    # customer.end carries no queueId: only the topic set applies to it
    dispatcher(starter, dead_letters).dispatch(batch(record(fresh(sample_events["customer-end"]), "m")))
    assert starter.calls == 1


def test_no_queue_set_means_no_queue_filter(sample_events, starter, dead_letters):
    envelope = fresh(sample_events["acd-end"])
    envelope["detail"]["eventBody"]["queueId"] = "99999999-0000-4000-8000-000000000000"
    dispatcher(starter, dead_letters, queue_ids=frozenset()).dispatch(batch(record(envelope, "m")))
    assert starter.calls == 1


# ---------------------------------------------------------------- dead letters


def test_a_wrong_org_event_is_dead_lettered_with_its_reason_and_acknowledged(sample_events, starter, dead_letters):
    envelope = fresh(sample_events["acd-end"])
    body = json.dumps(envelope)
    response = dispatcher(starter, dead_letters, org_id="11111111-2222-3333-4444-555555555555").dispatch(
        batch(record(body, "wrong-org", receive_count=2))
    )
    assert response == {"batchItemFailures": []}
    [(dl_body, attributes)] = dead_letters.messages
    assert dl_body == body  # unchanged
    assert attributes[ATTR_REASON].endswith("not the configured org 11111111-2222-3333-4444-555555555555")
    assert attributes["DeadLetterStage"] == "dispatcher"
    assert attributes["OriginalMessageId"] == "wrong-org"
    assert attributes["ApproximateReceiveCount"] == "2"
    assert starter.calls == 0


def test_the_original_string_attributes_travel_with_a_dead_letter(starter, dead_letters):
    rec = record("not json", "m")
    rec["messageAttributes"] = {
        "Producer": {"stringValue": "gcpipe-send", "dataType": "String"},
        "Blob": {"binaryValue": "AAE=", "dataType": "Binary"},
        ATTR_REASON: {"stringValue": "an older reason", "dataType": "String"},
    }
    dispatcher(starter, dead_letters).dispatch(batch(rec))
    [(_, attributes)] = dead_letters.messages
    assert attributes["Producer"] == "gcpipe-send" and "Blob" not in attributes
    assert attributes[ATTR_REASON].startswith("body is not valid JSON")


def test_when_the_dead_letter_send_fails_the_record_goes_back_to_sqs(starter, dead_letters):
    dead_letters.fail = True
    response = dispatcher(starter, dead_letters).dispatch(batch(record("{", "m1")))
    assert failed_ids(response) == {"m1"}


# ---------------------------------------------------------------- transient failures


def test_a_throttled_start_fails_only_its_record(sample_events, starter, dead_letters, metric_names):
    d = dispatcher(starter, dead_letters)
    throttled = fresh(sample_events["acd-end"])
    starter.failures[d.plan(record(throttled, "x"), NOW).event.dedup_key] = StartExecutionThrottled(
        "ThrottlingException"
    )
    response = d.dispatch(batch(record(throttled, "throttled"), record(fresh(sample_events["customer-end"]), "ok")))
    assert failed_ids(response) == {"throttled"}
    assert len(starter.names) == 1
    assert metric_names.count(METRIC_START_EXECUTION_THROTTLED) == 1


def test_a_wholly_failed_batch_returns_every_record_instead_of_raising(sample_events, starter, dead_letters):
    d = dispatcher(starter, dead_letters)
    events = [fresh(sample_events["acd-end"]), fresh(sample_events["customer-end"])]
    for envelope in events:
        starter.failures[d.plan(record(envelope, "x"), NOW).event.dedup_key] = StartExecutionUnavailable("503")
    response = d.dispatch(batch(*(record(e, f"m{i}") for i, e in enumerate(events))))
    assert failed_ids(response) == {"m0", "m1"}


def test_copies_in_one_batch_start_once_and_share_the_first_ones_fate(sample_events, starter, dead_letters):
    d = dispatcher(starter, dead_letters)
    copies = [record(fresh(sample_events["acd-end"], envelope_id=f"env-{i}"), f"m{i}") for i in range(3)]
    # When all copies arrive together
    assert d.dispatch(batch(*copies)) == {"batchItemFailures": []}
    # Then a single StartExecution was made
    assert starter.calls == 1
    # And when that start is throttled, no copy is acknowledged either
    other = InMemoryStarter()
    other.failures[d.plan(copies[0], NOW).event.dedup_key] = StartExecutionThrottled("throttled")
    assert failed_ids(dispatcher(other, dead_letters).dispatch(batch(*copies))) == {"m0", "m1", "m2"}


# ---------------------------------------------------------------- concurrency


def _ten_distinct(sample_events) -> dict:
    records = []
    for i in range(10):
        envelope = fresh(sample_events["acd-end"], age=timedelta(minutes=1, milliseconds=i))
        records.append(record(envelope, f"m{i}"))
    return batch(*records)


def test_a_batch_of_ten_starts_its_executions_concurrently(sample_events, dead_letters):
    # Given a starter that takes 200 ms per call
    starter = InMemoryStarter(latency=0.2)
    # When a batch of ten distinct events is dispatched
    dispatcher(starter, dead_letters).dispatch(_ten_distinct(sample_events))
    # Then calls overlapped (counted in flight, not timed: wall clock is flaky on shared CI)
    assert starter.calls == 10 and 1 < starter.max_in_flight <= 10


def test_concurrency_is_bounded_by_the_setting(sample_events, dead_letters):
    starter = InMemoryStarter(latency=0.1)
    dispatcher(starter, dead_letters, start_concurrency=3).dispatch(_ten_distinct(sample_events))
    assert starter.calls == 10 and 1 < starter.max_in_flight <= 3


def test_a_concurrency_of_one_calls_one_at_a_time(sample_events, dead_letters):
    starter = InMemoryStarter(latency=0.01)
    dispatcher(starter, dead_letters, start_concurrency=1).dispatch(_ten_distinct(sample_events))
    assert starter.calls == 10 and starter.max_in_flight == 1


# ---------------------------------------------------------------- boto3 adapters: error mapping


class _RaisingClient:
    def __init__(self, exc: Exception):
        self.exc = exc

    def start_execution(self, **kwargs):
        raise self.exc


def _client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "StartExecution"
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error("ThrottlingException", 400), StartExecutionThrottled),
        (_client_error("SomethingNew", 429), StartExecutionThrottled),
        (_client_error("ServiceUnavailable", 503), StartExecutionUnavailable),
        (_client_error("InternalFailure", 500), StartExecutionUnavailable),
        (_client_error("WhateverIt Is", 502), StartExecutionUnavailable),
    ],
)
def test_the_step_functions_adapter_maps_transient_errors(exc, expected):
    from genesys_pipeline.dispatch import StepFunctionsExecutionStarter

    # Given StartExecution failing with a transient error, Then the adapter raises the retryable kind
    with pytest.raises(expected):
        StepFunctionsExecutionStarter(_RaisingClient(exc), "arn").start_execution("n", "{}")


def test_the_step_functions_adapter_maps_connection_errors_and_already_exists():
    from botocore.exceptions import EndpointConnectionError

    from genesys_pipeline.dispatch import StepFunctionsExecutionStarter

    with pytest.raises(StartExecutionUnavailable):
        StepFunctionsExecutionStarter(
            _RaisingClient(EndpointConnectionError(endpoint_url="https://states")), "arn"
        ).start_execution("n", "{}")
    already = StepFunctionsExecutionStarter(_RaisingClient(_client_error("ExecutionAlreadyExists", 400)), "arn")
    assert already.start_execution("n", "{}") is StartResult.ALREADY_EXISTS


def test_a_non_transient_start_error_fails_the_record_too(sample_events, dead_letters):
    # Given a StartExecution that fails for a reason not worth retrying quickly (e.g. AccessDenied)
    from genesys_pipeline.dispatch import StepFunctionsExecutionStarter

    starter = StepFunctionsExecutionStarter(_RaisingClient(_client_error("AccessDeniedException", 400)), "arn")
    # Then the record still goes back to SQS (and on to the DLQ by redrive): nothing is dropped
    response = dispatcher(starter, dead_letters).dispatch(batch(record(fresh(sample_events["acd-end"]), "m")))
    assert failed_ids(response) == {"m"}


def test_the_adapter_clients_keep_botocore_retries_small():
    from genesys_pipeline.dispatch import client_config

    config = client_config(20)
    assert config.retries == {"mode": "standard", "max_attempts": 2}
    assert config.max_pool_connections == 20


# ---------------------------------------------------------------- a running execution started again


class IdempotentStepFunctions:
    """A boto3 ``stepfunctions`` client with AWS's Standard-machine name semantics: the same name and
    input as a RUNNING execution succeeds and returns the original response (same executionArn and
    startDate); a different input, or a closed execution, raises ExecutionAlreadyExists."""

    def __init__(self, clock):
        self.clock = clock
        self.executions: dict[str, dict] = {}  # name -> {"input", "status", "response"}

    def start_execution(self, *, stateMachineArn, name, input):  # noqa: A002 - boto3's keyword
        known = self.executions.get(name)
        if known is not None:
            if known["status"] == "RUNNING" and known["input"] == input:
                return dict(known["response"])
            raise _client_error("ExecutionAlreadyExists", 400)
        response = {"executionArn": f"{stateMachineArn}:{name}", "startDate": self.clock()}
        self.executions[name] = {"input": input, "status": "RUNNING", "response": response}
        return dict(response)

    def describe_execution(self, *, executionArn):
        name = executionArn.rsplit(":", 1)[1]
        self.described = getattr(self, "described", []) + [executionArn]
        known = self.executions[name]
        return {
            "executionArn": executionArn,
            "name": name,
            "status": known["status"],
            "input": known["input"],
            "startDate": known["response"]["startDate"],
        }


def idempotent_starter(clock=lambda: NOW):
    """The real adapter over ``IdempotentStepFunctions`` (its executions start at ``clock()``)."""
    from genesys_pipeline.dispatch import StepFunctionsExecutionStarter

    sfn = IdempotentStepFunctions(clock)
    return sfn, StepFunctionsExecutionStarter(sfn, "arn:aws:states:us-east-1:123456789012:stateMachine:m")


def received(body: dict, message_id: str, first_received: datetime, receive_count: int = 1) -> dict:
    out = record(body, message_id, receive_count)
    out["attributes"]["ApproximateFirstReceiveTimestamp"] = str(int(first_received.timestamp() * 1000))
    return out


def test_a_copy_arriving_while_the_execution_runs_is_a_duplicate_not_a_second_start(
    sample_events, dead_letters, outcomes
):
    # Given an execution started at 12:30:00 by one copy of an event, still running
    clock = iter([NOW, NOW + timedelta(seconds=5)])
    sfn, starter = idempotent_starter(lambda: next(clock))
    envelope = fresh(sample_events["acd-end"])
    dispatcher(starter, dead_letters).dispatch(batch(received(envelope, "first", NOW - timedelta(seconds=1))))
    # When an identical copy (same envelope: same name; another SQS message: another input), first received
    # 2 s later, is dispatched
    response = dispatcher(starter, dead_letters).dispatch(batch(received(envelope, "copy", NOW + timedelta(seconds=2))))
    # Then the copy is counted a duplicate, with the reason, and no second execution exists
    assert response == {"batchItemFailures": []}
    assert len(sfn.executions) == 1
    assert [(o, fields["message_id"]) for o, _, _, fields in outcomes] == [(Outcome.DUPLICATE, "copy")]
    assert "ExecutionAlreadyExists" in outcomes[0][2]


def test_an_identical_copy_received_before_the_start_and_redelivered_after_it_is_a_duplicate(
    sample_events, dead_letters, outcomes
):
    # Given two SQS messages with the same body (EventBridge delivered the event twice); the copy was first
    # received at 12:29:58, its batch failed, and meanwhile the first message started the execution at 12:30:00
    sfn, starter = idempotent_starter()
    envelope = fresh(sample_events["acd-end"])
    dispatcher(starter, dead_letters).dispatch(batch(received(envelope, "first", NOW - timedelta(seconds=1))))
    # When SQS redelivers the copy (receive count 2), the execution still running, and again once it has closed
    copy = received(envelope, "copy", NOW - timedelta(seconds=2), 2)
    dispatcher(starter, dead_letters).dispatch(batch(copy))
    [name] = sfn.executions
    sfn.executions[name]["status"] = "SUCCEEDED"
    dispatcher(starter, dead_letters).dispatch(batch(copy))
    # Then the start is the first message's: the copy is a duplicate both times (the chaos soak found it taking
    # the start as its own, so that no outcome was ever recorded for it)
    assert [(o, fields["message_id"]) for o, _, _, fields in outcomes] == [(Outcome.DUPLICATE, "copy")] * 2


@pytest.mark.parametrize("closed", [False, True], ids=["running", "closed"])
def test_a_redelivery_of_the_message_that_started_the_execution_is_not_counted_twice(
    sample_events, dead_letters, outcomes, closed
):
    # Given a message first received at 12:29:59 that started the execution at 12:30:00, whose dispatcher then
    # died before SQS deleted it (the chaos soak's dispatcher crash after part of its batch); the execution still
    # running, or already succeeded
    sfn, starter = idempotent_starter()
    envelope = fresh(sample_events["acd-end"])
    first_received = NOW - timedelta(seconds=1)
    dispatcher(starter, dead_letters).dispatch(batch(received(envelope, "m", first_received)))
    [name] = sfn.executions
    if closed:
        sfn.executions[name]["status"] = "SUCCEEDED"
    # When SQS redelivers that same message (receive count 2, same first-receive time): StartExecution succeeds
    # idempotently while the execution runs, and answers ExecutionAlreadyExists once it has closed
    response = dispatcher(starter, dead_letters).dispatch(batch(received(envelope, "m", first_received, 2)))
    # Then it is still this message's start: no duplicate outcome (the processor records applied, once); a closed
    # execution is recognised by DescribeExecution
    assert response == {"batchItemFailures": []}
    assert outcomes == []
    arn = f"arn:aws:states:us-east-1:123456789012:execution:m:{name}"
    assert getattr(sfn, "described", []) == ([arn] if closed else [])


def test_a_redelivered_record_that_started_the_execution_is_not_a_duplicate_of_another_copy_in_its_batch(
    sample_events, dead_letters, outcomes
):
    # Given a copy of an event ("b", its own envelope id) that started the execution, whose dispatcher then died
    sfn, starter = idempotent_starter()
    first_received = NOW - timedelta(seconds=1)
    b = fresh(sample_events["acd-end"], envelope_id="b-envelope")
    dispatcher(starter, dead_letters).dispatch(batch(received(b, "b", first_received)))
    [name] = sfn.executions
    sfn.executions[name]["status"] = "SUCCEEDED"
    # When SQS redelivers it in one batch after another copy ("a") of the same event, also redelivered
    a = fresh(sample_events["acd-end"], envelope_id="a-envelope")
    dispatcher(starter, dead_letters).dispatch(
        batch(received(a, "a", first_received, 2), received(b, "b", first_received, 2))
    )
    # Then "b" is the start it made (the processor records applied), and only "a" is a duplicate (the chaos
    # soak found both counted duplicates beside the applied: four outcomes for three events)
    assert [(o, fields["message_id"]) for o, _, _, fields in outcomes] == [(Outcome.DUPLICATE, "a")]


def test_a_copy_redelivered_after_the_execution_closed_is_still_a_duplicate(sample_events, dead_letters, outcomes):
    # Given an execution started and closed by one copy of an event
    sfn, starter = idempotent_starter()
    envelope = fresh(sample_events["acd-end"])
    dispatcher(starter, dead_letters).dispatch(batch(received(envelope, "first", NOW - timedelta(seconds=1))))
    [name] = sfn.executions
    sfn.executions[name]["status"] = "SUCCEEDED"
    # When another message with the same body, first received after that start, is redelivered (receive count 2)
    response = dispatcher(starter, dead_letters).dispatch(
        batch(received(envelope, "copy", NOW + timedelta(seconds=2), 2))
    )
    # Then it is a duplicate: the execution started before this message was first received
    assert response == {"batchItemFailures": []}
    assert [(o, fields["message_id"]) for o, _, _, fields in outcomes] == [(Outcome.DUPLICATE, "copy")]


def test_a_first_receive_that_meets_an_existing_execution_is_not_described():
    sfn, starter = idempotent_starter()
    starter.start_execution("n", "{}")
    sfn.executions["n"]["status"] = "SUCCEEDED"
    assert starter.start_execution("n", "{}", not_before=NOW) is StartResult.ALREADY_EXISTS
    assert not hasattr(sfn, "described")  # one call per duplicate, as before


def test_the_adapter_reads_the_idempotent_success_shape():
    from genesys_pipeline.dispatch import StepFunctionsExecutionStarter

    sfn = IdempotentStepFunctions(lambda: NOW)
    starter = StepFunctionsExecutionStarter(sfn, "arn")
    assert starter.start_execution("n", "{}", not_before=NOW - timedelta(seconds=1)) is StartResult.STARTED
    # the same name and input while running: success with the original startDate
    assert starter.start_execution("n", "{}", not_before=NOW + timedelta(milliseconds=1)) is StartResult.ALREADY_RUNNING
    assert starter.start_execution("n", "{}", not_before=NOW) is StartResult.STARTED  # not earlier: ours
    assert starter.start_execution("n", "{}") is StartResult.STARTED  # no first-receive time: as before
    assert starter.start_execution("n", '{"other": 1}') is StartResult.ALREADY_EXISTS
    sfn.executions["n"]["status"] = "SUCCEEDED"
    assert starter.start_execution("n", "{}", not_before=NOW + timedelta(seconds=1)) is StartResult.ALREADY_EXISTS
