"""Reserved concurrency, enforced as Lambda does: an invoke beyond it is the Invoke API's 429, which Step
Functions sees as Lambda.TooManyRequestsException, the SQS mapping leaves to the visibility timeout, and an
asynchronous invocation waits out."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gcpipe.local.lambda_runtime import RUNTIME
from gcpipe.local.sqs_poller import SqsEventSourcePoller, SqsMappingConfig
from tests.local import helpers
from tests.local.conftest import ROLE_ARN
from tests.local.helpers import wait_for_execution

# Holds its slot (its worker process) until the test opens the gate.
HOLDS = """
import json, os, time
def handler(event, context):
    deadline = time.time() + 20
    while not os.path.exists(os.environ["GATE"]) and time.time() < deadline:
        time.sleep(0.01)
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\\n")
    return {"ran": True}
"""
RECORDS = """
import json, os
def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\\n")
    return {"batchItemFailures": []}
"""


@pytest.fixture(autouse=True)
def gate(monkeypatch, tmp_path):
    gate = helpers.FileGate(tmp_path / "gate-open")
    # Lambda's own behaviour: refused at once (not the grace the runtime gives when Retry waits are compressed)
    monkeypatch.setattr(RUNTIME, "compressed_slot_wait_seconds", 0.0)
    yield gate
    gate.open()  # never leave a worker waiting


def no_retry_lambda(aws):
    return aws.client("lambda", config=Config(retries={"total_max_attempts": 1}))


def ran(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def hold_one_slot(aws, name: str) -> threading.Thread:
    """Start one invocation of ``name`` that keeps its slot until HOLD is set; return when it runs."""
    t = threading.Thread(target=lambda: aws.client("lambda").invoke(FunctionName=name, Payload=b'{"n": "holder"}'))
    t.start()
    assert helpers.wait_until(lambda: RUNTIME.concurrency.snapshot().running.get(name) == 1)
    return t


def test_an_invoke_beyond_reserved_concurrency_gets_429_too_many_requests_and_does_not_run(
    aws, gate, make_function, tmp_path
):
    out = tmp_path / "out"
    make_function(HOLDS, name="capped", env={"OUT": str(out), "GATE": str(gate.path)})
    aws.client("lambda").put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=1)
    holder = hold_one_slot(aws, "capped")

    with pytest.raises(ClientError) as refused:
        no_retry_lambda(aws).invoke(FunctionName="capped", Payload=b'{"n": "second"}')

    error = refused.value.response
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    gate.open()
    holder.join(10)
    assert [e["n"] for e in ran(out)] == ["holder"]  # the refused invoke never ran
    # the slot is free again
    assert json.loads(
        no_retry_lambda(aws).invoke(FunctionName="capped", Payload=b'{"n": "third"}')["Payload"].read()
    ) == {"ran": True}
    snap = RUNTIME.concurrency.snapshot()
    assert snap.throttled == {"capped": 1} and snap.peak["capped"] == 1 and snap.running == {}


def test_a_function_without_reserved_concurrency_is_not_capped(aws, gate, make_function, tmp_path):
    make_function(HOLDS, name="open", env={"OUT": str(tmp_path / "out"), "GATE": str(gate.path)})
    threads = [
        threading.Thread(target=lambda: aws.client("lambda").invoke(FunctionName="open", Payload=b"{}"))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    assert helpers.wait_until(lambda: RUNTIME.concurrency.snapshot().running.get("open") == 3)
    gate.open()
    for t in threads:
        t.join(10)
    assert RUNTIME.concurrency.snapshot().throttled == {}


def test_step_functions_sees_a_throttle_as_lambda_too_many_requests_and_retries_it(aws, make_function, tmp_path):
    # Given a task whose function has reserved concurrency 0 (every invoke throttled), retried by the
    # ASL's lambdaService retrier
    arn = make_function(RECORDS, name="throttled", env={"OUT": str(tmp_path / "out")})
    aws.client("lambda").put_function_concurrency(FunctionName="throttled", ReservedConcurrentExecutions=0)
    definition = {
        "StartAt": "Process",
        "States": {
            "Process": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": {}},
                "Retry": [
                    {
                        "ErrorEquals": ["Lambda.TooManyRequestsException"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 2,
                        "BackoffRate": 2.0,
                    }
                ],
                "End": True,
            }
        },
    }
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE_ARN)["stateMachineArn"]
    from gcpipe.local.stepfunctions import RETRY_CLOCK

    RETRY_CLOCK.requested.clear()
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]

    described = wait_for_execution(sfn, execution)

    # Then the error name is Lambda's, the Retry ran (two backoffs), and the function never ran
    assert described["status"] == "FAILED"
    assert described["error"] == "Lambda.TooManyRequestsException"
    assert "TooManyRequestsException" in described["cause"] and "Status Code: 429" in described["cause"]
    assert len(RETRY_CLOCK.requested) == 2
    assert RUNTIME.concurrency.snapshot().throttled == {"throttled": 3}
    assert ran(tmp_path / "out") == []


def test_a_throttled_sqs_batch_returns_to_the_queue_after_the_visibility_timeout_and_counts_a_receive(
    aws, make_function, tmp_path
):
    out = tmp_path / "out"
    fn = make_function(RECORDS, name="dispatcher", env={"OUT": str(out)})
    lam = aws.client("lambda")
    lam.put_function_concurrency(FunctionName="dispatcher", ReservedConcurrentExecutions=0)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=fn, BatchSize=10)["UUID"]
    poller = SqsEventSourcePoller(
        SqsMappingConfig.from_mapping(lam.get_event_source_mapping(UUID=uuid), url), sqs, lam, "us-east-1"
    )
    sqs.send_message(QueueUrl=url, MessageBody='{"n": 1}')

    # When the dispatcher is throttled
    result = poller.poll_once()

    # Then nothing ran and the record is still in flight (invisible until its visibility timeout)
    assert result is not None and result.throttled and result.left == result.message_ids and result.deleted == []
    assert poller.poll_once() is None
    assert ran(out) == []
    # and once the visibility timeout passed and the function has room, it comes back as a second receive
    poller.expire_in_flight()
    lam.delete_function_concurrency(FunctionName="dispatcher")
    again = poller.poll_once()
    assert again is not None and not again.throttled and again.deleted == again.message_ids
    [event] = ran(out)
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_an_asynchronous_invocation_waits_for_a_free_slot_instead_of_failing(aws, gate, make_function, tmp_path):
    out = tmp_path / "out"
    make_function(HOLDS, name="logger", env={"OUT": str(out), "GATE": str(gate.path)})
    aws.client("lambda").put_function_concurrency(FunctionName="logger", ReservedConcurrentExecutions=1)
    holder = hold_one_slot(aws, "logger")

    aws.client("lambda").invoke(FunctionName="logger", InvocationType="Event", Payload=b'{"n": "event"}')

    assert RUNTIME.async_in_flight == 1  # accepted (202), queued behind the slot
    assert ran(out) == []  # cannot have run: the only slot is held
    gate.open()
    holder.join(10)
    assert RUNTIME.wait_for_async(10)
    assert sorted(e["n"] for e in ran(out)) == ["event", "holder"]
    assert RUNTIME.concurrency.snapshot().throttled == {}


def test_with_retry_waits_compressed_a_throttled_invoke_waits_for_a_slot_rather_than_fail(
    aws, gate, make_function, tmp_path, monkeypatch
):
    # Given Retry waits skipped (scale 0), where a real retrier would have tried again seconds later
    out = tmp_path / "out"
    make_function(HOLDS, name="graced", env={"OUT": str(out), "GATE": str(gate.path)})
    aws.client("lambda").put_function_concurrency(FunctionName="graced", ReservedConcurrentExecutions=1)
    monkeypatch.setattr(RUNTIME, "compressed_slot_wait_seconds", 20.0)
    holder = hold_one_slot(aws, "graced")
    second: dict = {}
    t = threading.Thread(
        target=lambda: second.update(no_retry_lambda(aws).invoke(FunctionName="graced", Payload=b'{"n": "second"}'))
    )
    t.start()
    assert helpers.wait_until(lambda: RUNTIME.concurrency.snapshot().waiting.get("graced") == 1)

    # When the slot frees
    gate.open()
    holder.join(10)
    t.join(20)

    # Then the second invoke ran instead of being refused
    assert "FunctionError" not in second and json.loads(second["Payload"].read()) == {"ran": True}
    assert sorted(e["n"] for e in ran(out)) == ["holder", "second"]
    assert RUNTIME.concurrency.snapshot().throttled == {}


def test_a_reset_runtime_forgets_a_replaced_concurrency_seam():
    # The chaos soak puts random throttles in the seam; the next pipeline in the process must not inherit them
    from gcpipe.local.lambda_runtime import LambdaRuntime, ReservedConcurrency

    class Throttling(ReservedConcurrency):
        pass

    runtime = LambdaRuntime()
    runtime.concurrency = Throttling()
    runtime.reset()
    assert type(runtime.concurrency) is ReservedConcurrency
