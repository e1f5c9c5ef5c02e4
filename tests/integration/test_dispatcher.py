"""The dispatcher Lambda against moto: SQS batch in, Step Functions executions and DLQ messages out."""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from genesys_pipeline.dispatch import Dispatcher, SqsDeadLetterSink, StepFunctionsExecutionStarter
from genesys_pipeline.settings import DispatcherSettings

ORG = "6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
ACD_END = "v2.detail.events.conversation.{id}.acd.end"
CUSTOMER_END = "v2.detail.events.conversation.{id}.customer.end"
PASS_DEFINITION = json.dumps({"StartAt": "Process", "States": {"Process": {"Type": "Pass", "End": True}}})


@dataclass
class FakeLambdaContext:
    function_name: str = "genesys-dispatcher"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:genesys-dispatcher"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def aws(monkeypatch):
    """moto with a Standard state machine, the main queue and its DLQ; the handler's env set."""
    from dispatcher import handler

    with mock_aws():
        sfn, sqs = boto3.client("stepfunctions"), boto3.client("sqs")
        role = "arn:aws:iam::123456789012:role/genesys-states"
        machine = sfn.create_state_machine(name="genesys", definition=PASS_DEFINITION, roleArn=role, type="STANDARD")
        dlq = sqs.create_queue(QueueName="genesys-dlq")["QueueUrl"]
        main = sqs.create_queue(QueueName="genesys-main")["QueueUrl"]
        for name, value in {
            "STATE_MACHINE_ARN": machine["stateMachineArn"],
            "DEAD_LETTER_QUEUE_URL": dlq,
            "GENESYS_ORG_ID": ORG,
            "ALLOWED_TOPICS": f"{ACD_END},{CUSTOMER_END}",
            "ALLOWED_QUEUE_IDS": "a1b2c3d4-e5f6-4789-9123-4567890abcde",
            "START_EXECUTION_CONCURRENCY": "10",
        }.items():
            monkeypatch.setenv(name, value)
        handler.dispatcher.cache_clear()
        yield _Aws(sfn, sqs, machine["stateMachineArn"], main, dlq, handler)
        handler.dispatcher.cache_clear()


@dataclass
class _Aws:
    sfn: object
    sqs: object
    machine_arn: str
    main_url: str
    dlq_url: str
    handler: object

    def executions(self) -> list[dict]:
        return self.sfn.list_executions(stateMachineArn=self.machine_arn)["executions"]

    def dead_letters(self) -> list[dict]:
        return self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", [])

    def sqs_event(self, *bodies: dict | str) -> dict:
        """Send the bodies to the main queue and receive them as Lambda's SQS event would carry them."""
        for body in bodies:
            self.sqs.send_message(
                QueueUrl=self.main_url, MessageBody=body if isinstance(body, str) else json.dumps(body)
            )
        messages = []
        while len(messages) < len(bodies):
            messages += self.sqs.receive_message(
                QueueUrl=self.main_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            )["Messages"]
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:genesys-main",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }

    def invoke(self, event: dict) -> dict:
        return self.handler.lambda_handler(event, FakeLambdaContext())


def fresh(envelope: dict, *, age: timedelta = timedelta(minutes=1), envelope_id: str | None = None) -> dict:
    out = copy.deepcopy(envelope)
    out["detail"]["eventBody"]["eventTime"] = int((datetime.now(timezone.utc) - age).timestamp() * 1000)
    if envelope_id:
        out["id"] = envelope_id
    return out


def test_a_mixed_batch_gets_a_partial_batch_response(aws, sample_events):
    # Given a batch of: a valid event, its redelivery (another envelope id), a filtered topic,
    # a stale event and a malformed body
    valid = fresh(sample_events["acd-end"])
    event = aws.sqs_event(
        valid,
        fresh(sample_events["acd-end"], envelope_id="11111111-aaaa-4bbb-8ccc-dddddddddddd")
        | {"detail": valid["detail"]},
        fresh(sample_events["attributes"]),
        fresh(sample_events["customer-end"], age=timedelta(days=6)),
        '{"version": "0", "detail": ',
    )
    # When the dispatcher handles it
    response = aws.invoke(event)
    # Then nothing is left for SQS to retry, one execution runs, the malformed body is on the DLQ
    assert response == {"batchItemFailures": []}
    [execution] = aws.executions()
    assert execution["name"].startswith("acd-end-2f7bf00a-")
    described = aws.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"])["dedupKey"] == execution["name"]
    [dead] = aws.dead_letters()
    assert dead["Body"] == '{"version": "0", "detail": '
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["DeadLetterReason"].startswith("body is not valid JSON")
    assert attributes["DeadLetterStage"] == "dispatcher"
    malformed_id = next(r["messageId"] for r in event["Records"] if r["body"].startswith('{"version": "0", "detail": '))
    assert attributes["OriginalMessageId"] == malformed_id
    assert attributes["ApproximateReceiveCount"] == "1"


def test_a_redelivery_across_batches_starts_exactly_one_execution(aws, sample_events):
    # Given an event already dispatched
    assert aws.invoke(aws.sqs_event(fresh(sample_events["customer-end"]))) == {"batchItemFailures": []}
    original = json.loads(aws.sfn.describe_execution(executionArn=aws.executions()[0]["executionArn"])["input"])
    # When EventBridge delivers it again with a new envelope id (so a different execution input)
    again = copy.deepcopy(sample_events["customer-end"])
    again["detail"]["eventBody"]["eventTime"] = int(datetime.fromisoformat(original["eventTime"]).timestamp() * 1000)
    again["id"] = "22222222-aaaa-4bbb-8ccc-dddddddddddd"
    response = aws.invoke(aws.sqs_event(again))
    # Then ExecutionAlreadyExists counts as a success, and there is still one execution
    assert response == {"batchItemFailures": []}
    assert len(aws.executions()) == 1


def test_a_wrong_org_event_lands_on_the_dlq_and_starts_nothing(aws, sample_events):
    stranger = fresh(sample_events["acd-end"])
    stranger["source"] = "aws.partner/genesys.com/cloud/99999999-0000-4000-8000-000000000000/contact-center-events"
    assert aws.invoke(aws.sqs_event(stranger)) == {"batchItemFailures": []}
    assert aws.executions() == []
    [dead] = aws.dead_letters()
    assert dead["MessageAttributes"]["DeadLetterReason"]["StringValue"].endswith(f"not the configured org {ORG}")
    assert json.loads(dead["Body"]) == stranger


def test_filtered_and_stale_events_start_no_execution(aws, sample_events):
    other_queue = fresh(sample_events["acd-end"])
    other_queue["detail"]["eventBody"]["queueId"] = "99999999-0000-4000-8000-000000000000"
    event = aws.sqs_event(other_queue, fresh(sample_events["acd-end"], age=timedelta(days=5, minutes=1)))
    assert aws.invoke(event) == {"batchItemFailures": []}
    assert aws.executions() == [] and aws.dead_letters() == []


class ThrottlingClient:
    """The real (moto) Step Functions client, except that chosen execution names are throttled."""

    def __init__(self, client, throttled_names: set[str]):
        self._client, self.throttled_names = client, throttled_names

    def start_execution(self, **kwargs):
        if kwargs["name"] in self.throttled_names:
            raise ClientError(
                {
                    "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "StartExecution",
            )
        return self._client.start_execution(**kwargs)


def _dispatcher(aws, sfn_client) -> Dispatcher:
    settings = DispatcherSettings.from_env()
    return Dispatcher(
        settings, StepFunctionsExecutionStarter(sfn_client, aws.machine_arn), SqsDeadLetterSink(aws.sqs, aws.dlq_url)
    )


def test_a_throttled_start_execution_fails_only_its_record(aws, sample_events):
    throttled, fine = fresh(sample_events["acd-end"]), fresh(sample_events["customer-end"])
    event = aws.sqs_event(throttled, fine)
    d = _dispatcher(aws, aws.sfn)
    throttled_key = d.plan(event["Records"][0], datetime.now(timezone.utc)).event.dedup_key
    d = _dispatcher(aws, ThrottlingClient(aws.sfn, {throttled_key}))
    response = d.dispatch(event)
    throttled_id = next(r["messageId"] for r in event["Records"] if json.loads(r["body"])["id"] == throttled["id"])
    assert response == {"batchItemFailures": [{"itemIdentifier": throttled_id}]}
    [started] = aws.executions()
    assert started["name"] != throttled_key and started["name"].startswith("customer-end-")


def test_a_wholly_throttled_batch_is_returned_for_retry_not_raised(aws, sample_events):
    event = aws.sqs_event(fresh(sample_events["acd-end"]))
    d = _dispatcher(aws, aws.sfn)
    key = d.plan(event["Records"][0], datetime.now(timezone.utc)).event.dedup_key
    response = _dispatcher(aws, ThrottlingClient(aws.sfn, {key})).dispatch(event)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert aws.executions() == []


class LatencyClient:
    """The real (moto) client behind a fixed latency, counting calls in flight at once."""

    def __init__(self, client, latency: float):
        self._client, self.latency = client, latency
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def start_execution(self, **kwargs):
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.latency)
            return self._client.start_execution(**kwargs)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_a_batch_of_ten_runs_its_start_executions_concurrently(aws, sample_events):
    # ten distinct events: each its own CorrelationId (times read from the clock one by one may coincide)
    bodies = [fresh(sample_events["acd-end"]) for _ in range(10)]
    for i, body in enumerate(bodies):
        body["detail"]["metadata"]["CorrelationId"] = f"00000000-0000-4000-8000-{i:012d}"
    event = aws.sqs_event(*bodies)
    client = LatencyClient(aws.sfn, latency=0.2)
    assert _dispatcher(aws, client).dispatch(event) == {"batchItemFailures": []}
    assert 1 < client.max_in_flight <= 10  # overlap counted, not timed
    assert len(aws.executions()) == 10
