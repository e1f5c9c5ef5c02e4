"""The processor when its AWS dependencies fail: the idempotency table (moto DynamoDB) and Secrets Manager
(moto), faults injected with a botocore event hook on the client the processor uses; the Genesys simulator
records every write.

Transient faults (throttling, 5xx, an unreachable endpoint) are ``AwsDependencyUnavailable`` (retried by the
state machine); permanent ones (access denied, a missing table) keep failing at once. A write repeated after
an attempt died between the Genesys write and its idempotency record is identical to the first.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from botocore.config import Config
from botocore.exceptions import ClientError

from genesys_pipeline.errors import AwsDependencyUnavailable, GenesysBadCredentials
from genesys_pipeline.genesys import GenesysClient
from genesys_pipeline.processing import Processor
from genesys_pipeline.settings import ProcessorSettings

from .test_processor import (  # noqa: F401 - fixtures
    SECRET_NAME,
    TABLE,
    FakeLambdaContext,
    aws,
    execution_input,
    fresh_caches,
    genesys_settings,
    sim,
    sleeps,
    task_payload,
)

START_TIME = "2026-11-23T12:00:00.123Z"


class CallFaults:
    """Fails the next ``times`` calls of ``operation`` on one boto3 client with ``error`` (a botocore
    ``before-call`` hook: the call never reaches the service, as when the service refused it)."""

    def __init__(self, client: Any, operation: str, error: Callable[[], Exception], times: int = 1):
        self.remaining = times
        self.injected = 0
        self._error = error
        client.meta.events.register(f"before-call.{client.meta.service_model.endpoint_prefix}.{operation}", self._hook)

    def _hook(self, **_: Any) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            self.injected += 1
            raise self._error()


def client_error(code: str, status: int, operation: str) -> Callable[[], ClientError]:
    return lambda: ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class Clock:
    """A wall clock that moves a minute on every reading: processedAt must not come from it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def table_client(aws):
    return boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 1}))


@pytest.fixture
def make(aws, sim, sleeps):
    def build(client: Any = None, table: str = TABLE) -> Processor:
        genesys = genesys_settings(sim)
        settings = ProcessorSettings(genesys=genesys, idempotency_table=table)
        store = DynamoDBPersistenceLayer(table_name=table, boto3_client=client) if client is not None else None
        return Processor(settings, GenesysClient(genesys, sleep=sleeps), persistence_store=store, now=Clock())

    return build


@pytest.fixture
def acd_end(sample_events):
    return execution_input(sample_events["acd-end"])


def payload(event_input: dict, retry_count: int = 0) -> dict:
    return {**task_payload(event_input, retry_count=retry_count), "executionStartTime": START_TIME}


# ----------------------------------------------------------------------------- the idempotency table


@pytest.mark.parametrize(
    "operation, code, status",
    [
        ("PutItem", "ProvisionedThroughputExceededException", 400),
        ("PutItem", "ThrottlingException", 400),
        ("PutItem", "InternalServerError", 500),
        ("PutItem", "ServiceUnavailable", 503),
    ],
)
def test_a_throttled_or_failing_table_is_retryable_and_the_retry_writes_once(
    make, table_client, sim, acd_end, operation, code, status
):
    processor = make(table_client)
    faults = CallFaults(table_client, operation, client_error(code, status, operation))
    # When the table refuses the in-progress record
    with pytest.raises(AwsDependencyUnavailable) as raised:
        processor.process(payload(acd_end), FakeLambdaContext())
    # Then the error names the dependency, the call and the code (the ASL retries it by name), nothing was written
    assert raised.value.dependency == "idempotency table" and raised.value.code == code
    assert str(raised.value) == f"idempotency table: {operation} {code} (HTTP {status})"
    assert isinstance(raised.value.__cause__, IdempotencyPersistenceLayerError)
    assert faults.injected == 1 and sim.writes == []
    # And the state machine's retry applies it, once
    assert processor.process(payload(acd_end, retry_count=1), FakeLambdaContext())["outcome"] == "applied"
    assert len(sim.writes) == 1


def test_an_unreachable_table_endpoint_is_retryable(make, sim, acd_end, aws):
    # A closed loopback port: botocore's EndpointConnectionError (moto does not intercept this URL)
    client = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(AwsDependencyUnavailable, match="idempotency table: EndpointConnectionError"):
        make(client).process(payload(acd_end))
    assert sim.writes == []


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationException"])
def test_access_denied_and_validation_errors_fail_at_once(make, table_client, sim, acd_end, code):
    CallFaults(table_client, "PutItem", client_error(code, 400, "PutItem"))
    with pytest.raises(IdempotencyPersistenceLayerError):
        make(table_client).process(payload(acd_end))
    assert sim.writes == []


def test_a_missing_table_fails_at_once(make, table_client, sim, acd_end):
    # moto's real answer for a table that does not exist: ResourceNotFoundException
    with pytest.raises(IdempotencyPersistenceLayerError) as raised:
        make(table_client, table="no-such-table").process(payload(acd_end))
    assert not isinstance(raised.value, AwsDependencyUnavailable)
    assert raised.value.__cause__.response["Error"]["Code"] == "ResourceNotFoundException"
    assert sim.writes == []


def test_the_shipped_table_client_makes_few_sdk_attempts(make):
    from genesys_pipeline.processing import IDEMPOTENCY_SDK_MAX_ATTEMPTS

    config = make().idempotency_store.client.meta.config
    assert config.retries["mode"] == "standard" and config.retries["total_max_attempts"] == IDEMPOTENCY_SDK_MAX_ATTEMPTS


# ----------------------------------------------------------------------------- a repeated write is identical


def test_a_write_repeated_after_the_attempt_died_before_its_record_completed_is_identical(
    make, table_client, sim, acd_end
):
    processor = make(table_client)
    # Given the Genesys write lands, then the table throttles the completion of the idempotency record
    CallFaults(table_client, "UpdateItem", client_error("ThrottlingException", 400, "UpdateItem"))
    with pytest.raises(AwsDependencyUnavailable, match="UpdateItem ThrottlingException"):
        processor.process(payload(acd_end), FakeLambdaContext())
    assert len(sim.writes) == 1
    # The record stays IN_PROGRESS until the dead attempt's Lambda deadline: a retry meanwhile waits (retried by name)
    with pytest.raises(IdempotencyAlreadyInProgressError):
        processor.process(payload(acd_end, retry_count=1), FakeLambdaContext())
    # When the deadline has passed (as after a Lambda timeout) and Step Functions retries
    [item] = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert item["status"]["S"] == "INPROGRESS"
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"id": item["id"]},
        UpdateExpression="SET in_progress_expiration = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    result = processor.process(payload(acd_end, retry_count=2), FakeLambdaContext())
    # Then the write is repeated, with exactly the same body (processedAt is the execution's start time)
    assert result["outcome"] == "applied"
    first, second = sim.writes
    assert (first.method, first.path, first.body) == (second.method, second.path, second.body)
    assert first.body["attributes"]["aws_processed_at"] == START_TIME
    assert len(sim.writes) == 2


def test_processed_at_is_the_execution_start_time_whatever_the_clock(make, sim, acd_end):
    processor = make()
    result = processor.process(payload(acd_end))
    assert result["writtenBy"]["processedAt"] == START_TIME
    conv, part = acd_end["conversationId"], acd_end["participantId"]
    assert sim.attributes_of(conv, part)["aws_processed_at"] == START_TIME


def test_an_offset_start_time_is_written_in_utc(make, sim, acd_end):
    result = make().process({**payload(acd_end), "executionStartTime": "2026-11-23T13:00:00.5+01:00"})
    assert result["writtenBy"]["processedAt"] == "2026-11-23T12:00:00.500Z"


def test_without_a_start_time_processed_at_falls_back_to_the_clock(make, acd_end):
    # An execution of a definition older than the executionStartTime field
    result = make().process(task_payload(acd_end))
    assert result["writtenBy"]["processedAt"] == "2026-11-23T13:01:00.000Z"


@pytest.mark.parametrize("value", ["yesterday", "2026-11-23T12:00:00", 1763900000])
def test_a_malformed_start_time_is_invalid(make, acd_end, value):
    from genesys_pipeline.errors import InvalidEvent

    with pytest.raises(InvalidEvent, match="executionStartTime"):
        make().process({**payload(acd_end), "executionStartTime": value})


# ----------------------------------------------------------------------------- Secrets Manager


@pytest.fixture
def secrets_client(aws, monkeypatch):
    """The client Powertools' get_secret uses, so that faults can be injected into it."""
    client = boto3.client("secretsmanager", config=Config(retries={"mode": "standard", "max_attempts": 1}))
    monkeypatch.setitem(parameters.base.DEFAULT_PROVIDERS, "secrets", parameters.SecretsProvider(boto3_client=client))
    return client


@pytest.mark.parametrize("code, status", [("ThrottlingException", 400), ("InternalServiceError", 500)])
def test_secrets_manager_throttling_and_5xx_are_retryable(make, secrets_client, sim, acd_end, code, status):
    CallFaults(secrets_client, "GetSecretValue", client_error(code, status, "GetSecretValue"))
    processor = make()
    with pytest.raises(AwsDependencyUnavailable) as raised:
        processor.process(payload(acd_end))
    assert str(raised.value) == f"Secrets Manager: GetSecretValue {code} (HTTP {status})"
    assert sim.writes == [] and sim.token_fetches == 0
    # The failed write left no idempotency record: the retry fetches the secret and writes
    assert processor.process(payload(acd_end, retry_count=1))["outcome"] == "applied"
    assert len(sim.writes) == 1


def test_secrets_manager_access_denied_fails_at_once(make, secrets_client, acd_end):
    CallFaults(secrets_client, "GetSecretValue", client_error("AccessDeniedException", 400, "GetSecretValue"))
    with pytest.raises(parameters.exceptions.GetParameterError):
        make().process(payload(acd_end))


def test_a_missing_secret_is_bad_credentials_by_its_error_code(make, secrets_client, acd_end):
    secrets_client.delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)
    with pytest.raises(GenesysBadCredentials, match="does not exist"):
        make().process(payload(acd_end))


# ----------------------------------------------------------------------------- the error logger on these faults


def test_the_error_logger_logs_the_failure_and_does_not_raise_when_aws_dependencies_fail(secrets_client, sim, acd_end):
    from genesys_pipeline.failures import handle_status_change
    from genesys_pipeline.settings import ErrorLoggerSettings

    from .test_processor import LogCapture

    settings = ErrorLoggerSettings(
        genesys=genesys_settings(sim), mark_failed_conversations=True, failure_status_attribute="aws_processing_status"
    )
    arn = f"arn:aws:states:us-east-1:123456789012:execution:genesys-test:{acd_end['dedupKey']}"
    sfn = boto3.client("stepfunctions", config=Config(retries={"mode": "standard", "max_attempts": 1}))
    # Given Step Functions throttles the error logger's history read and Secrets Manager the mark's token fetch
    CallFaults(sfn, "GetExecutionHistory", client_error("ThrottlingException", 400, "GetExecutionHistory"))
    CallFaults(secrets_client, "GetSecretValue", client_error("ThrottlingException", 400, "GetSecretValue"))
    status_change = {
        "source": "aws.states",
        "detail": {
            "executionArn": arn,
            "name": acd_end["dedupKey"],
            "status": "FAILED",
            "input": json.dumps(acd_end),
            "error": "AwsDependencyUnavailable",
            "cause": None,
        },
    }
    # When the failed execution's status change arrives
    with LogCapture() as logs:
        result = handle_status_change(
            status_change, sfn=sfn, genesys=GenesysClient(settings.genesys), settings=settings
        )
    # Then the failure record is still logged, the mark's failure is a warning naming the dependency, nothing raised
    assert result == {"logged": True, "executionArn": arn, "marked": False}
    [failed] = logs.with_message("event failed")
    assert failed["error"] == "AwsDependencyUnavailable" and failed["dedup_key"] == acd_end["dedupKey"]
    assert failed.get("failed_state") is None  # the history read was throttled; the record goes out without it
    assert logs.with_message("get_execution_history failed")[0]["error"] == "ClientError"
    [not_marked] = logs.with_message("failure not marked in Genesys")
    assert not_marked["error"] == "AwsDependencyUnavailable" and not_marked["transient"] is True
    assert not_marked["detail"] == "Secrets Manager: GetSecretValue ThrottlingException (HTTP 400)"
    assert sim.writes == []
