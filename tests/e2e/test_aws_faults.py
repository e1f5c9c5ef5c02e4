"""AWS dependency faults end to end: the idempotency table (moto's DynamoDB backend) throttling or refusing the
processor, through the deployed state machine's Retry, with the accounting invariant; and the write's
``processedAt`` coming from the execution's start time.

Faults are injected in moto's DynamoDB backend (the service side), so they reach the processor as the real
service's errors would, through its own boto3 client and SDK retries."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from genesys_pipeline.processing import IDEMPOTENCY_SDK_MAX_ATTEMPTS

pytestmark = pytest.mark.e2e


class TableFaults:
    """Makes moto's DynamoDB PutItem (the processor's in-progress record) fail for its next ``times`` calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error_type: str, status: int, times: int):
        from moto.core.exceptions import AWSError
        from moto.dynamodb.models import DynamoDBBackend

        class Injected(AWSError):
            TYPE = error_type
            STATUS = status

        self.remaining, self.injected = times, 0
        original = DynamoDBBackend.put_item

        def put_item(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if self.remaining > 0:
                self.remaining -= 1
                self.injected += 1
                raise Injected("injected by the test")
            return original(backend, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, "put_item", put_item)


def _task_errors(e2e, execution_arn: str) -> list[str]:
    sfn = e2e.pipeline.client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]


def test_a_throttled_idempotency_table_is_retried_by_the_state_machine_and_applied_once(e2e, monkeypatch):
    # Given the table throttles every SDK attempt of the processor's first invocation
    faults = TableFaults(monkeypatch, "ProvisionedThroughputExceededException", 400, times=IDEMPOTENCY_SDK_MAX_ATTEMPTS)
    envelope = e2e.event("acd.end")
    conversation = envelope["detail"]["eventBody"]["conversationId"]
    [sent] = e2e.send(envelope)
    e2e.settle()

    # Then the Process task failed once with AwsDependencyUnavailable, was retried by name, and applied once
    assert faults.injected == IDEMPOTENCY_SDK_MAX_ATTEMPTS
    [execution] = e2e.executions()
    assert execution["status"] == "SUCCEEDED"
    assert _task_errors(e2e, execution["executionArn"]) == ["AwsDependencyUnavailable"]
    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == 1 and sent.outcome == "applied"
    assert len(e2e.processor_writes(conversation)) == 1


def test_an_idempotency_table_access_denial_fails_at_process_at_once(e2e, monkeypatch):
    # Given the processor's role may not write the table (a permanent fault)
    TableFaults(monkeypatch, "AccessDeniedException", 400, times=10**6)
    envelope = e2e.event("acd.end")
    [sent] = e2e.send(envelope)
    e2e.settle()

    # Then the execution fails at Process on the first attempt (no retry), is logged, and nothing is written
    [failed] = e2e.executions("FAILED")
    assert failed["error"] == "IdempotencyPersistenceLayerError"
    assert _task_errors(e2e, failed["executionArn"]) == ["IdempotencyPersistenceLayerError"]
    [line] = [ln for ln in e2e.capture.lines if ln.outcome == "failed"]
    assert line.dedup_key == sent.dedup_key and line.record.failed_state == "Process"
    assert e2e.processor_writes() == []
    assert e2e.assert_accounted().counts["failed"] == 1


def test_processed_at_is_the_executions_start_time(e2e):
    envelope = e2e.event("acd.end")
    conversation = envelope["detail"]["eventBody"]["conversationId"]
    e2e.send(envelope)
    e2e.settle()

    [execution] = e2e.executions()
    [write] = e2e.processor_writes(conversation)
    written = datetime.fromisoformat(write.body["attributes"]["aws_processed_at"].replace("Z", "+00:00"))
    # The attribute is the start time at millisecond precision (DescribeExecution's startDate, same moment)
    assert abs((written - execution["startDate"]).total_seconds()) < 0.001, json.dumps(write.body)
    e2e.assert_accounted()
