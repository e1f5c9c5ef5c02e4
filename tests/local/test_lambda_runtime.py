"""Adapter 1: Lambda invoke runs the real handler in the function's own worker process, errors as Lambda reports them."""

from __future__ import annotations

import json
import threading
import time

from tests.local.conftest import ROLE_ARN
from tests.local.helpers import wait_for_execution

ECHO_ENV = """
import os, json
def handler(event, context):
    return {
        "event": event,
        "greeting": os.environ["GREETING"],
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "lambda_name_env": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
    }
"""

RAISES = """
class GenesysUnavailable(Exception):
    pass
def handler(event, context):
    raise GenesysUnavailable("503 from Genesys")
"""


def test_invoke_runs_the_handler_with_its_environment_and_a_lambda_context(aws, make_function, monkeypatch):
    # Given a function whose code reads an environment variable the process does not have
    monkeypatch.delenv("GREETING", raising=False)
    arn = make_function(ECHO_ENV, env={"GREETING": "hello"}, name="echo-env", timeout=30)

    # When it is invoked through the Lambda API
    resp = aws.client("lambda").invoke(FunctionName="echo-env", Payload=json.dumps({"a": 1}))

    # Then the real handler ran with the function's environment and a Lambda-like context
    body = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp
    assert body["event"] == {"a": 1}
    assert body["greeting"] == "hello"
    assert body["function_name"] == "echo-env" == body["lambda_name_env"]
    assert body["memory"] == 256
    assert body["arn"] == arn
    assert len(body["request_id"]) == 36
    assert 25_000 < body["remaining_ms"] <= 30_000
    # and this process's environment was never touched: the function ran in its own process
    import os

    assert "GREETING" not in os.environ


def test_an_exception_comes_back_as_an_unhandled_function_error(aws, make_function):
    make_function(RAISES, name="raises")

    resp = aws.client("lambda").invoke(FunctionName="raises", Payload=b"{}")

    assert resp["FunctionError"] == "Unhandled"
    error = json.loads(resp["Payload"].read())
    assert error["errorType"] == "GenesysUnavailable"
    assert error["errorMessage"] == "503 from Genesys"
    assert isinstance(error["stackTrace"], list) and error["stackTrace"]


def test_step_functions_retries_by_error_name_and_fails_with_that_error(aws, make_function, tmp_path):
    # Given a task that always raises GenesysUnavailable, retried twice by name with a backoff
    counter = tmp_path / "attempts"
    fn_arn = make_function(
        """
        import os
        class GenesysUnavailable(Exception):
            pass
        def handler(event, context):
            with open(os.environ["COUNTER"], "a") as f:
                f.write(str(event["retryCount"]) + "\\n")
            raise GenesysUnavailable("still down")
        """,
        env={"COUNTER": str(counter)},
    )
    definition = {
        "StartAt": "Process",
        "States": {
            "Process": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": fn_arn, "Payload": {"retryCount.$": "$$.State.RetryCount"}},
                "OutputPath": "$.Payload",
                "Retry": [
                    {"ErrorEquals": ["GenesysRejected"], "MaxAttempts": 0},
                    {"ErrorEquals": ["GenesysUnavailable"], "IntervalSeconds": 5, "BackoffRate": 2, "MaxAttempts": 2},
                ],
                "End": True,
            }
        },
    }
    sfn = aws.client("stepfunctions")
    sm = sfn.create_state_machine(name="retry", definition=json.dumps(definition), roleArn=ROLE_ARN)

    # When it runs
    started = time.monotonic()
    exec_arn = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], name="e1", input="{}")["executionArn"]
    described = wait_for_execution(sfn, exec_arn)

    # Then it was attempted 3 times, the backoff was asked for but not slept, and it failed with the errorType
    assert counter.read_text().split() == ["0", "1", "2"]
    from gcpipe.local.stepfunctions import RETRY_CLOCK

    assert RETRY_CLOCK.requested == [5.0, 10.0]
    assert time.monotonic() - started < 5
    assert described["status"] == "FAILED"
    assert described["error"] == "GenesysUnavailable"
    assert json.loads(described["cause"])["errorMessage"] == "still down"


def test_functions_with_different_environments_never_see_each_others_variables(aws, make_function):
    # Given two functions with different values of the same variable, invoked concurrently
    source = """
        import os, time
        def handler(event, context):
            seen = set()
            for _ in range(20):
                seen.add(os.environ["WHO"])
                time.sleep(0.002)
            return sorted(seen)
        """
    make_function(source, env={"WHO": "dispatcher"}, name="a")
    make_function(source, env={"WHO": "processor"}, name="b")
    lam = aws.client("lambda")
    results: dict[str, list] = {"a": [], "b": []}

    def call(name: str) -> None:
        for _ in range(5):
            results[name].append(json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()))

    threads = [threading.Thread(target=call, args=(n,)) for n in ("a", "b", "a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]

    # Then every invocation saw only its own function's value for its whole duration
    assert results["a"] and all(r == ["dispatcher"] for r in results["a"])
    assert results["b"] and all(r == ["processor"] for r in results["b"])
