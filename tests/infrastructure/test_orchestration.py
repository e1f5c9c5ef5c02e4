"""The state machine: STANDARD, one Task state, Retry by the processor's error names, no Catch."""

from __future__ import annotations

import json
import subprocess

import pytest

from infra import constants as C
from infra.asl import STATEMACHINES_DIR, render_definition
from infra.config import retry_span_seconds

from .conftest import ROOT, Synthesized

RETRIED = {"GenesysRateLimited", "GenesysUnavailable", "AwsDependencyUnavailable"}
IN_PROGRESS = "IdempotencyAlreadyInProgressError"
LAMBDA_SERVICE = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


def machine(s: Synthesized) -> dict:
    return s.one("AWS::StepFunctions::StateMachine")[1]["Properties"]


def definition(s: Synthesized) -> dict:
    props = machine(s)
    assert isinstance(props["DefinitionString"], str), "the definition must be inline text (no S3 asset)"
    return json.loads(props["DefinitionString"])


def test_standard_with_one_task_state(shipped):
    props = machine(shipped)
    assert props["StateMachineType"] == "STANDARD"
    asl = definition(shipped)
    assert asl["StartAt"] == "Process"
    assert list(asl["States"]) == ["Process"]
    process = asl["States"]["Process"]
    assert process["Type"] == "Task" and process["End"] is True
    assert process["Resource"] == "arn:aws:states:::lambda:invoke"


def test_processor_arn_goes_through_definition_substitutions(shipped):
    props = machine(shipped)
    fn_id, _ = shipped.one("AWS::Lambda::Function", "ProcessorFunction")
    assert props["DefinitionSubstitutions"] == {"ProcessorFunctionArn": {"Fn::GetAtt": [fn_id, "Arn"]}}
    assert definition(shipped)["States"]["Process"]["Parameters"]["FunctionName"] == "${ProcessorFunctionArn}"


def test_payload_and_result_selector_are_the_contract(shipped):
    process = definition(shipped)["States"]["Process"]
    assert process["Parameters"]["Payload"] == {
        "event.$": "$",
        "executionName.$": "$$.Execution.Name",
        "executionArn.$": "$$.Execution.Id",
        "executionStartTime.$": "$$.Execution.StartTime",
        "retryCount.$": "$$.State.RetryCount",
    }
    assert process["ResultSelector"] == {"result.$": "$.Payload"}
    assert process["TimeoutSeconds"] > C.PROCESSOR_TIMEOUT_SECONDS


def test_retries_by_name_with_full_jitter_but_the_in_progress_wait_and_the_configured_budgets(shipped):
    retries = definition(shipped)["States"]["Process"]["Retry"]
    by_name = {tuple(r["ErrorEquals"]): r for r in retries}
    assert {frozenset(k) for k in by_name} == {
        frozenset({"GenesysRateLimited"}),
        frozenset({"GenesysUnavailable"}),
        frozenset({"AwsDependencyUnavailable"}),
        frozenset({IN_PROGRESS}),
        frozenset(LAMBDA_SERVICE),
    }
    budgets = {
        "GenesysRateLimited": shipped.config.retries.rate_limited,
        "GenesysUnavailable": shipped.config.retries.unavailable,
        "AwsDependencyUnavailable": shipped.config.retries.aws_dependency,
        IN_PROGRESS: shipped.config.retries.in_progress,
    }
    for r in retries:
        # The in-progress retrier waits out a dead attempt's record: a wait, not a herd to spread
        assert r["JitterStrategy"] == ("NONE" if r["ErrorEquals"] == [IN_PROGRESS] else "FULL")
        budget = budgets.get(r["ErrorEquals"][0], shipped.config.retries.lambda_service)
        assert (r["IntervalSeconds"], r["MaxAttempts"], r["BackoffRate"], r["MaxDelaySeconds"]) == (
            budget.interval_seconds,
            budget.max_attempts,
            budget.backoff_rate,
            budget.max_delay_seconds,
        )
    assert by_name[("GenesysRateLimited",)]["MaxAttempts"] >= by_name[("GenesysUnavailable",)]["MaxAttempts"]
    assert retry_span_seconds(shipped.config.retries.in_progress) > C.PROCESSOR_TIMEOUT_SECONDS
    # Rate limiting waits long; a concurrent attempt of the same event is short-lived.
    assert by_name[("GenesysRateLimited",)]["MaxDelaySeconds"] > by_name[(IN_PROGRESS,)]["MaxDelaySeconds"]


def test_retried_error_names_are_the_processors(shipped):
    """The ASL's names are the exception class names the processor raises (errorType)."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
    from genesys_pipeline.errors import NON_RETRYABLE_ERROR_NAMES, RETRYABLE_ERROR_NAMES

    names = {n for r in definition(shipped)["States"]["Process"]["Retry"] for n in r["ErrorEquals"]}
    assert set(RETRYABLE_ERROR_NAMES) | {IdempotencyAlreadyInProgressError.__name__} <= names
    assert not names & set(NON_RETRYABLE_ERROR_NAMES)


def test_no_catch_and_no_catch_all_retry(shipped):
    text = machine(shipped)["DefinitionString"]
    asl = json.loads(text)
    for state in asl["States"].values():
        assert "Catch" not in state
        assert state["Type"] not in ("Fail", "Succeed", "Pass", "Choice")
        for r in state.get("Retry", []):
            assert "States.ALL" not in r["ErrorEquals"]
    assert "States.ALL" not in text


def test_non_retryable_errors_are_not_retried(shipped):
    names = {n for r in definition(shipped)["States"]["Process"]["Retry"] for n in r["ErrorEquals"]}
    assert names == RETRIED | {IN_PROGRESS} | LAMBDA_SERVICE
    assert not names & {"InvalidEvent", "GenesysRejected", "GenesysForbidden", "GenesysBadCredentials"}


def test_logging_without_execution_data_and_tracing(shipped):
    props = machine(shipped)
    log_id, log = shipped.one("AWS::Logs::LogGroup", "Orchestration")
    assert log["Properties"]["LogGroupName"] == f"/aws/vendedlogs/states/{shipped.config.stack_name}-process-event"
    assert log["Properties"]["RetentionInDays"] == shipped.config.log_retention_days
    assert props["LoggingConfiguration"] == {
        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_id, "Arn"]}}}],
        "IncludeExecutionData": False,
        "Level": "ALL",
    }
    assert props["TracingConfiguration"] == {"Enabled": True}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_rendered_asl_passes_asl_validator(env, tmp_path):
    from infra.check_static import SAMPLE_ARNS, _context
    from infra.config import load

    validator = ROOT / "node_modules/.bin/asl-validator"
    if not validator.exists():
        pytest.skip("node_modules not installed (npm ci)")
    text = render_definition(
        (STATEMACHINES_DIR / C.STATE_MACHINE_FILE).read_text(), load(_context().get, env), arns=SAMPLE_ARNS
    )
    path = tmp_path / "machine.asl.json"
    path.write_text(text)
    done = subprocess.run([str(validator), "--json-path", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_unknown_placeholder_is_an_error(dev):
    with pytest.raises(ValueError, match=r"unknown placeholder \$\{Typo\}"):
        render_definition('{"x": ${Typo}}', dev.config)
