"""Each function instance is its own process, and AWS's limits hold there: timeout, memory, crashes, reserved
concurrency (counting processes), IAM. A worker that ended is replaced by a new one (a cold start)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from botocore.config import Config

from gcpipe.local.iam import RolePolicy, Statement
from gcpipe.local.lambda_runtime import RUNTIME
from tests.local import helpers
from tests.local.conftest import ACCOUNT, REGION, ROLE_ARN
from tests.local.helpers import wait_for_execution

STATE = """
import os, time
CALLS = []  # module state: one list per process
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit") is not None:
        os._exit(event["exit"])
    if event.get("segfault"):
        import ctypes
        ctypes.string_at(0)
    if event.get("allocate_mb"):
        hog = bytearray(event["allocate_mb"] * 1024 * 1024)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(2)
    CALLS.append(1)
    return {"pid": os.getpid(), "calls": len(CALLS), "parent_only": os.environ.get("GCPIPE_TEST_PARENT_ONLY")}
"""


def no_retry(aws):
    return aws.client("lambda", config=Config(retries={"total_max_attempts": 1}, read_timeout=60))


def invoke(aws, name: str, event: dict) -> tuple[dict, str | None]:
    resp = no_retry(aws).invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return json.loads(resp["Payload"].read()), resp.get("FunctionError")


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_a_warm_worker_is_reused_with_its_module_state_and_only_the_function_environment(
    aws, make_function, monkeypatch
):
    monkeypatch.setenv("GCPIPE_TEST_PARENT_ONLY", "leaked")
    make_function(STATE, name="stateful")

    first, _ = invoke(aws, "stateful", {})
    second, _ = invoke(aws, "stateful", {})

    assert first["pid"] == second["pid"] != os.getpid()  # one warm environment, not this process
    assert (first["calls"], second["calls"]) == (1, 2)  # its own module state, kept between invocations
    assert first["parent_only"] is None  # the function's environment, not this process's
    assert RUNTIME.workers().started == {"stateful": 1}


def test_a_timeout_kills_the_worker_and_answers_lambdas_timeout_error(aws, make_function):
    make_function(STATE, name="slow", timeout=1)
    warm, _ = invoke(aws, "slow", {})

    started = time.monotonic()
    error, function_error = invoke(aws, "slow", {"sleep": 30})

    assert function_error == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert time.monotonic() - started < 10
    assert helpers.wait_until(lambda: gone(warm["pid"]))  # killed, not left running
    again, function_error = invoke(aws, "slow", {})
    assert function_error is None and again["pid"] != warm["pid"] and again["calls"] == 1  # a new, cold worker


def test_step_functions_fails_the_task_with_lambdas_timeout_error(aws, make_function):
    arn = make_function(STATE, name="slow-task", timeout=1)
    definition = {
        "StartAt": "Process",
        "States": {
            "Process": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": {"sleep": 30}},
                "End": True,
            }
        },
    }
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name="timeouts", definition=json.dumps(definition), roleArn=ROLE_ARN)

    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
    described = wait_for_execution(sfn, execution, timeout=20)

    assert described["status"] == "FAILED"
    assert described["error"] == "Sandbox.Timedout"


@pytest.mark.parametrize(
    ("event", "error_type", "message"),
    [
        ({"exit": 3}, "Runtime.ExitError", "Runtime exited with error: exit status 3"),
        ({"segfault": True}, "Runtime.ExitError", "Runtime exited with error: signal: segmentation fault"),
        ({"allocate_mb": 400}, "Runtime.OutOfMemory", "Runtime exited with error: signal: killed"),
    ],
    ids=["os._exit", "segfault", "out-of-memory"],
)
def test_a_crashing_worker_is_reported_as_lambdas_runtime_error_and_replaced(
    aws, make_function, event, error_type, message
):
    make_function(STATE, name="crashes")  # MemorySize 256
    warm, _ = invoke(aws, "crashes", {})

    error, function_error = invoke(aws, "crashes", event)

    assert function_error == "Unhandled"
    assert error["errorType"] == error_type
    assert message in error["errorMessage"] and error["errorMessage"].startswith("RequestId: ")
    assert helpers.wait_until(lambda: gone(warm["pid"]))
    again, function_error = invoke(aws, "crashes", {})
    assert function_error is None and again["pid"] != warm["pid"]
    assert RUNTIME.workers().alive == {"crashes": [again["pid"]]}


def test_reserved_concurrency_counts_worker_processes(aws, make_function, tmp_path):
    gate = helpers.FileGate(tmp_path / "open")
    make_function(HOLD_THEN_PID, name="capped", env={"GATE": str(gate.path)})
    aws.client("lambda").put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=2)
    RUNTIME.compressed_slot_wait_seconds = 0.0
    results: list = []
    try:
        holders = [threading.Thread(target=lambda: results.append(invoke(aws, "capped", {}))) for _ in range(2)]
        [t.start() for t in holders]
        assert helpers.wait_until(lambda: RUNTIME.concurrency.snapshot().running.get("capped") == 2)
        assert helpers.wait_until(lambda: len(RUNTIME.workers().alive.get("capped", [])) == 2)

        from botocore.exceptions import ClientError

        with pytest.raises(ClientError) as refused:
            invoke(aws, "capped", {})
        assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert len(RUNTIME.workers().alive["capped"]) == 2  # two processes, never a third
    finally:
        gate.open()
        RUNTIME.compressed_slot_wait_seconds = 30.0
    [t.join(20) for t in holders]
    assert len({r[0]["pid"] for r in results}) == 2


HOLD_THEN_PID = """
import os, time
def handler(event, context):
    while not os.path.exists(os.environ["GATE"]):
        time.sleep(0.01)
    return {"pid": os.getpid()}
"""

SENDS = """
import boto3, os
def handler(event, context):
    sqs = boto3.client("sqs")
    try:
        sqs.send_message(QueueUrl=event["queue_url"], MessageBody="x")
    except sqs.exceptions.ClientError as exc:
        return {"error": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"]}
    return {"sent": True}
"""


def test_every_aws_call_is_checked_against_the_role_policy_resource_included(aws, make_function):
    # Given a function whose role may send to queue "allowed" only
    sqs = aws.client("sqs")
    allowed = sqs.create_queue(QueueName="allowed")["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    make_function(SENDS, name="sender")
    policy = RolePolicy(
        "local",
        ROLE_ARN,
        (
            Statement(
                0, "Allow", ("sqs:SendMessage",), (), (f"arn:aws:sqs:{REGION}:{ACCOUNT}:allowed",), (), False, "P"
            ),
            Statement(1, "Allow", ("dynamodb:GetItem",), (), ("*",), (), False, "P"),
        ),
        ACCOUNT,
        REGION,
    )
    RUNTIME.set_role_policy("sender", policy)

    # When it sends to both
    ok, _ = invoke(aws, "sender", {"queue_url": allowed})
    denied, _ = invoke(aws, "sender", {"queue_url": other})

    # Then the allowed call went through and the other failed as AWS fails it, without reaching SQS
    assert ok == {"sent": True}
    assert denied["error"] == "AccessDenied"
    assert denied["message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/local/sender is not authorized to perform: "
        f"sqs:SendMessage on resource: arn:aws:sqs:{REGION}:{ACCOUNT}:other because no "
        "identity-based policy allows the sqs:SendMessage action"
    )
    assert (
        int(
            sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        == 0
    )
    # And the grant no call used is listed
    assert [(u.action, u.resource) for u in RUNTIME.permissions.unused()] == [("dynamodb:GetItem", "*")]
    assert [(role, d.action, d.resource) for role, d in RUNTIME.permissions.denied] == [
        ("local", "sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:other")
    ]


def test_a_hook_module_is_installed_in_each_worker_before_the_handler(aws, make_function):
    # Given a hook (the fault-injection seam) that makes every SQS call of the function fail
    make_function(SENDS, name="hooked", extra_files={"fail_sqs_hook.py": FAIL_SQS_HOOK})
    RUNTIME.worker_hooks = ["fail_sqs_hook:install_from_env"]
    RUNTIME.worker_environment = {"FAIL_SQS_CODE": "ServiceUnavailable"}
    url = aws.client("sqs").create_queue(QueueName="q")["QueueUrl"]

    result, _ = invoke(aws, "hooked", {"queue_url": url})

    assert result["error"] == "ServiceUnavailable"


FAIL_SQS_HOOK = """
import os
from gcpipe.local.worker import register_botocore_handler

def install_from_env():
    code = os.environ["FAIL_SQS_CODE"]

    def fail(**kwargs):
        from botocore.awsrequest import AWSResponse
        return AWSResponse("https://fault", 503, {}, None), {"Error": {"Code": code, "Message": "injected"},
                                                            "ResponseMetadata": {"HTTPStatusCode": 503}}

    register_botocore_handler("before-call.sqs.*", fail)
"""
