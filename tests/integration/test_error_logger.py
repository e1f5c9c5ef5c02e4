"""The error logger on real (moto) failed executions, marking conversations in the Genesys simulator."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from gcpipe.simulator import GenesysSimulator
from genesys_pipeline.failures import CAUSE_MAX_CHARS, console_url, handle_status_change
from genesys_pipeline.genesys import GenesysClient, clear_token_cache
from genesys_pipeline.observability import metrics
from genesys_pipeline.settings import ErrorLoggerSettings

from .test_processor import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_NAME,
    FakeLambdaContext,
    LogCapture,
    execution_input,
    genesys_settings,
)

ROLE = "arn:aws:iam::123456789012:role/genesys-test-sfn"


@pytest.fixture
def sfn(fresh_caches_and_aws):
    return boto3.client("stepfunctions")


@pytest.fixture
def fresh_caches_and_aws():
    """Empty token/secret/metric caches; moto with a real ASL interpreter, so history and describe are real."""
    clear_token_cache()
    parameters.clear_caches()
    metrics.clear_metrics()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("secretsmanager").create_secret(
            Name=SECRET_NAME, SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        )
        yield
    clear_token_cache()
    parameters.clear_caches()
    metrics.clear_metrics()


def failed_execution(
    sfn,
    event_input: dict,
    *,
    error="GenesysRejected",
    cause_message="Genesys PATCH /api/v2/... -> HTTP 400 (inin-correlation-id abc)",
) -> dict:
    """A real FAILED execution, failed at a state named Process, plus its status-change event."""
    cause = json.dumps(
        {"errorType": error, "errorMessage": cause_message, "stackTrace": ["  File handler.py ..."] * 50}
    )
    definition = {"StartAt": "Process", "States": {"Process": {"Type": "Fail", "Error": error, "Cause": cause}}}
    machine = sfn.create_state_machine(name="genesys-test", definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    arn = sfn.start_execution(stateMachineArn=machine, name=event_input["dedupKey"], input=json.dumps(event_input))[
        "executionArn"
    ]
    for _ in range(100):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert described["status"] == "FAILED"
    # The EventBridge event as delivered; input/error/cause left null to exercise describe_execution.
    return {
        "version": "0",
        "id": "e1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": machine,
            "name": described["name"],
            "status": "FAILED",
            "startDate": 1763900000123,
            "stopDate": 1763900001123,
            "input": None,
            "inputDetails": {"included": False},
            "output": None,
            "error": None,
            "cause": None,
        },
    }


@pytest.fixture
def sim():
    with GenesysSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as s:
        yield s


@pytest.fixture
def error_logger(fresh_caches_and_aws, sim):
    settings = ErrorLoggerSettings(
        genesys=genesys_settings(sim), mark_failed_conversations=True, failure_status_attribute="aws_processing_status"
    )
    client = GenesysClient(settings.genesys)

    def run(event):
        return handle_status_change(event, sfn=boto3.client("stepfunctions"), genesys=client, settings=settings)

    return run


@pytest.fixture
def logs():
    with LogCapture() as capture:
        yield capture


def test_a_failed_execution_produces_one_failure_record(sfn, error_logger, sim, sample_events, logs):
    event_input = execution_input(sample_events["acd-end"])
    status_change = failed_execution(sfn, event_input)
    arn = status_change["detail"]["executionArn"]

    result = error_logger(status_change)

    assert result == {"logged": True, "executionArn": arn, "marked": True}
    records = logs.with_message("event failed")
    assert len(records) == 1
    record = records[0]
    assert record["outcome"] == "failed" and record["level"] == "WARNING"
    assert record["execution_arn"] == arn
    assert (
        record["console_url"]
        == f"https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/{arn}"
    )
    assert record["dedup_key"] == event_input["dedupKey"] and record["conversation_id"] == event_input["conversationId"]
    assert record["error"] == "GenesysRejected" and record["reason"] == "GenesysRejected"
    assert record["cause"].startswith("GenesysRejected: Genesys PATCH") and "stackTrace" not in record["cause"]
    assert record["failed_state"] == "Process" and record["status"] == "FAILED"
    assert record["redrive"]["aws_cli"] == f"aws stepfunctions redrive-execution --execution-arn {arn}"
    assert record["redrive"]["gcpipe"] == f"gcpipe redrive {arn}" and "Redrive" in record["redrive"]["console"]
    assert record["start_date"] and record["stop_date"]
    assert metrics.metric_set["EventsFailed"]["Value"] == [1.0]
    # The best-effort mark in Genesys.
    assert sim.attributes_of(event_input["conversationId"], event_input["participantId"]) == {
        "aws_processing_status": "failed",
        "aws_processing_error": "GenesysRejected",
    }


def test_the_event_fields_are_used_when_present(sfn, error_logger, sample_events, logs):
    event_input = execution_input(sample_events["customer-end"])
    status_change = failed_execution(sfn, event_input)
    status_change["detail"].update(
        input=json.dumps(event_input), error="GenesysUnavailable", status="TIMED_OUT", cause="x" * 5000
    )
    error_logger(status_change)
    record = logs.with_message("event failed")[0]
    assert record["status"] == "TIMED_OUT" and record["error"] == "GenesysUnavailable"
    assert len(record["cause"]) == CAUSE_MAX_CHARS


def test_a_genesys_outage_during_the_mark_does_not_raise(sfn, error_logger, sim, sample_events, logs):
    status_change = failed_execution(sfn, execution_input(sample_events["acd-end"]))
    sim.fail_next(10, status=503)
    result = error_logger(status_change)
    assert result["logged"] is True and result["marked"] is False
    assert len(logs.with_message("event failed")) == 1
    not_marked = logs.with_message("failure not marked in Genesys")
    assert (
        len(not_marked) == 1
        and not_marked[0]["error"] == "GenesysUnavailable"
        and not_marked[0]["genesys_correlation_id"]
    )
    assert metrics.metric_set["FailureMarkFailed"]["Value"] == [1.0]
    assert sim.writes == []


def test_a_hung_genesys_and_bad_credentials_do_not_raise_either(sfn, sim, sample_events, logs):
    settings = ErrorLoggerSettings(
        genesys=genesys_settings(sim, read_timeout_seconds=0.3),
        mark_failed_conversations=True,
        failure_status_attribute="aws_processing_status",
    )
    status_change = failed_execution(sfn, execution_input(sample_events["acd-end"]))
    sim.hang_next(1)
    hung = handle_status_change(
        status_change, sfn=boto3.client("stepfunctions"), genesys=GenesysClient(settings.genesys), settings=settings
    )
    boto3.client("secretsmanager").put_secret_value(
        SecretId=SECRET_NAME, SecretString=json.dumps({"client_id": "gone"})
    )
    parameters.clear_caches()
    clear_token_cache()
    bad = handle_status_change(
        status_change, sfn=boto3.client("stepfunctions"), genesys=GenesysClient(settings.genesys), settings=settings
    )
    assert hung["marked"] is False and bad["marked"] is False
    errors = [r["error"] for r in logs.with_message("failure not marked in Genesys")]
    assert errors == ["GenesysUnavailable", "GenesysBadCredentials"]


def test_marking_can_be_switched_off(sfn, sim, sample_events):
    settings = ErrorLoggerSettings(genesys=None, mark_failed_conversations=False, failure_status_attribute="s")
    status_change = failed_execution(sfn, execution_input(sample_events["acd-end"]))
    result = handle_status_change(status_change, sfn=boto3.client("stepfunctions"), genesys=None, settings=settings)
    assert result["marked"] is False and sim.request_count() == 0


def test_other_statuses_and_events_are_ignored(error_logger, logs):
    assert error_logger({"source": "aws.states", "detail": {"executionArn": "arn:x", "status": "SUCCEEDED"}}) == {
        "logged": False
    }
    assert error_logger({"source": "aws.events", "detail": {}}) == {"logged": False}
    assert logs.with_message("event failed") == []


def test_a_failure_record_survives_describe_and_history_errors(error_logger, logs):
    arn = "arn:aws:states:eu-west-1:123456789012:execution:genesys-test:missing"
    result = error_logger(
        {
            "source": "aws.states",
            "detail": {
                "executionArn": arn,
                "name": "missing",
                "status": "ABORTED",
                "input": None,
                "error": None,
                "cause": None,
            },
        }
    )
    record = logs.with_message("event failed")[0]  # moto knows no such execution: describe and history fail
    assert result["logged"] is True and record["status"] == "ABORTED" and record.get("failed_state") is None
    assert record["console_url"] == console_url(arn) and "region=eu-west-1" in record["console_url"]
    assert record["dedup_key"] == "missing"


@pytest.fixture
def error_logger_env(fresh_caches_and_aws, sim, monkeypatch):
    from error_logger import handler

    for name, value in {
        "GENESYS_DOMAIN": "mypurecloud.com",
        "GENESYS_SECRET_NAME": SECRET_NAME,
        "GENESYS_API_BASE_URL": sim.base_url,
        "GENESYS_LOGIN_BASE_URL": sim.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    handler.runtime.cache_clear()
    yield handler
    handler.runtime.cache_clear()


def test_handler_logs_and_marks(error_logger_env, sim, sample_events, logs):
    event_input = execution_input(sample_events["acd-end"])
    status_change = failed_execution(boto3.client("stepfunctions"), event_input)
    result = error_logger_env.lambda_handler(
        status_change, FakeLambdaContext(function_name="genesys-test-error-logger")
    )
    assert result["logged"] is True and result["marked"] is True
    record = logs.with_message("event failed")[0]
    assert record["execution_arn"] == status_change["detail"]["executionArn"] and record["failed_state"] == "Process"
    assert (
        sim.attributes_of(event_input["conversationId"], event_input["participantId"])["aws_processing_status"]
        == "failed"
    )
