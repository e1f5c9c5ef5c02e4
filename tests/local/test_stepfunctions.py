"""Adapter 4 and friends: Retry sleeps, status-change events, local replay."""

from __future__ import annotations

import json
import time

import pytest

from gcpipe.local.lambda_runtime import RUNTIME
from gcpipe.local.stepfunctions import RETRY_CLOCK, STATUS_CHANGE_DETAIL_TYPE, replay_execution
from tests.local.conftest import ROLE_ARN
from tests.local.helpers import wait_for_execution


def _machine(aws, fn_arn: str, retry: list | None = None) -> str:
    definition = {
        "StartAt": "Process",
        "States": {
            "Process": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": fn_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Retry": retry or [],
                "End": True,
            }
        },
    }
    return aws.client("stepfunctions").create_state_machine(
        name=f"m{int(time.time() * 1e6)}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]


FAILS_WHEN_ASKED = """
class GenesysRejected(Exception):
    pass
def handler(event, context):
    if event.get("fail"):
        raise GenesysRejected("400 from Genesys")
    return {"ok": True}
"""


def test_retry_sleeps_are_scaled_by_the_retry_clock(aws, make_function):
    fn = make_function(FAILS_WHEN_ASKED)
    sm = _machine(
        aws, fn, [{"ErrorEquals": ["GenesysRejected"], "IntervalSeconds": 1, "BackoffRate": 1, "MaxAttempts": 2}]
    )
    sfn = aws.client("stepfunctions")

    RETRY_CLOCK.scale = 0.2  # a demo may keep (scaled) real waits
    started = time.monotonic()
    arn = sfn.start_execution(stateMachineArn=sm, input=json.dumps({"fail": True}))["executionArn"]
    assert wait_for_execution(sfn, arn)["status"] == "FAILED"
    elapsed = time.monotonic() - started

    # The scaled waits were really slept (a lower bound on wall time holds however loaded the machine is;
    # an upper bound would not).
    assert RETRY_CLOCK.requested == [1.0, 1.0]
    assert RETRY_CLOCK.slept == pytest.approx([0.2, 0.2])
    assert elapsed >= 0.4


def test_status_change_events_reach_the_default_bus_and_a_lambda_rule(aws, make_function, tmp_path):
    # Given the pipeline's status-change rule on the default bus, targeting an error logger
    out = tmp_path / "logged.jsonl"
    logger = make_function(
        """
        import json, os
        def handler(event, context):
            open(os.environ["OUT"], "a").write(json.dumps(event) + "\\n")
        """,
        env={"OUT": str(out)},
    )
    events = aws.client("events")
    events.put_rule(
        Name="failures",
        EventPattern=json.dumps(
            {
                "source": ["aws.states"],
                "detail-type": [STATUS_CHANGE_DETAIL_TYPE],
                "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"]},
            }
        ),
    )
    events.put_targets(Rule="failures", Targets=[{"Id": "logger", "Arn": logger}])
    sm = _machine(aws, make_function(FAILS_WHEN_ASKED))
    sfn = aws.client("stepfunctions")

    # When one execution succeeds and one fails
    ok = sfn.start_execution(stateMachineArn=sm, name="ok", input="{}")["executionArn"]
    bad = sfn.start_execution(stateMachineArn=sm, name="bad", input=json.dumps({"fail": True}))["executionArn"]
    wait_for_execution(sfn, ok), wait_for_execution(sfn, bad)
    assert RUNTIME.wait_for_async(5)

    # Then the logger got exactly the FAILED one, shaped like AWS's event
    [event] = [json.loads(line) for line in out.read_text().splitlines()]
    assert event["source"] == "aws.states" and event["detail-type"] == STATUS_CHANGE_DETAIL_TYPE
    assert event["resources"] == [bad]
    detail = event["detail"]
    assert detail["executionArn"] == bad and detail["stateMachineArn"] == sm and detail["name"] == "bad"
    assert detail["status"] == "FAILED" and detail["error"] == "GenesysRejected"
    assert json.loads(detail["cause"])["errorMessage"] == "400 from Genesys"
    assert json.loads(detail["input"]) == {"fail": True}
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    assert detail["redriveStatus"] == "REDRIVABLE"


def test_replay_starts_a_new_execution_with_the_same_input_and_says_so(aws, make_function):
    sm = _machine(aws, make_function(FAILS_WHEN_ASKED))
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=sm, name="evt-1", input=json.dumps({"fail": True}))["executionArn"]
    wait_for_execution(sfn, arn)

    first = replay_execution(sfn, arn)
    wait_for_execution(sfn, first.new_execution_arn)  # while it runs, the same name and input would return it
    second = replay_execution(sfn, arn)

    assert "not AWS RedriveExecution" in first.note
    assert first.new_execution_arn.endswith(":evt-1-replay-1") and second.new_execution_arn.endswith(":evt-1-replay-2")
    assert json.loads(sfn.describe_execution(executionArn=first.new_execution_arn)["input"]) == {"fail": True}


def test_an_execution_is_running_from_its_creation(aws, make_function, monkeypatch):
    # Given a started execution observed at the first moment the backend lists it, before its worker starts
    # (the execution-started metric is recorded there); a poller's idleness check lands there under load
    from gcpipe.local import service_metrics

    sm = _machine(aws, make_function(FAILS_WHEN_ASKED))
    sfn = aws.client("stepfunctions")
    seen: list[list[str]] = []
    started = service_metrics.execution_started

    def observe(machine_arn: str) -> None:
        seen.append([e["status"] for e in sfn.list_executions(stateMachineArn=sm)["executions"]])
        started(machine_arn)

    monkeypatch.setattr(service_metrics, "execution_started", observe)

    # When it is started
    arn = sfn.start_execution(stateMachineArn=sm, input=json.dumps({}))["executionArn"]

    # Then it was listed as RUNNING (moto alone: no status, and ListExecutions fails with AttributeError)
    assert seen == [["RUNNING"]]
    assert wait_for_execution(sfn, arn)["status"] == "SUCCEEDED"


def test_a_jsonpath_is_parsed_once_while_the_adapters_are_installed_and_anew_after(aws):
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    from gcpipe.local import moto_patches

    # Given the adapters installed: moto's ASL paths and EventBridge's input templates parse each path once
    for parse in (jsonpath_ng.ext.parse, json_path.parse, result_path.parse):
        assert parse("$.detail.conversationId") is parse("$.detail.conversationId")
    # and the parsed path still finds, as moto's own extract_json uses it
    assert json_path.extract_json("$.detail.conversationId", {"detail": {"conversationId": "c-1"}}) == "c-1"
    # When they are removed, moto parses anew, as it did
    moto_patches.remove()
    assert jsonpath_ng.ext.parse("$.detail") is not jsonpath_ng.ext.parse("$.detail")
    moto_patches.install()  # the fixture removes them again


def test_lambda_tasks_share_one_client_while_the_adapters_are_installed(aws, make_function):
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from gcpipe.local import moto_patches

    # Given the adapters installed: every Lambda task of every execution gets the same client
    first = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda")
    assert lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda") is first
    assert first.meta.config.max_pool_connections >= 64  # many executions invoke at once
    # and executions still invoke through it
    sm = _machine(aws, make_function(FAILS_WHEN_ASKED))
    sfn = aws.client("stepfunctions")
    arns = [sfn.start_execution(stateMachineArn=sm, input="{}")["executionArn"] for _ in range(3)]
    assert [wait_for_execution(sfn, arn)["status"] for arn in arns] == ["SUCCEEDED"] * 3
    # When they are removed, moto makes a client per call again
    moto_patches.remove()
    assert lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda") is not first
    moto_patches.install()  # the fixture removes them again


def test_a_stop_ends_a_retry_wait_at_once_and_its_status_change_follows(aws, make_function):
    from gcpipe.local.stepfunctions import STATUS_EVENTS

    fn = make_function(FAILS_WHEN_ASKED)
    sm = _machine(
        aws, fn, [{"ErrorEquals": ["GenesysRejected"], "IntervalSeconds": 60, "BackoffRate": 1, "MaxAttempts": 3}]
    )
    sfn = aws.client("stepfunctions")
    RETRY_CLOCK.scale = 1.0  # a real 60 s wait, as the throughput bench runs them
    # Given an execution waiting out its first Retry
    arn = sfn.start_execution(stateMachineArn=sm, input=json.dumps({"fail": True}))["executionArn"]
    deadline = time.monotonic() + 20
    while not RETRY_CLOCK.requested:
        assert time.monotonic() < deadline, "the execution never reached its Retry"
        time.sleep(0.02)
    # When it is stopped (StopExecution, as the console's Stop button does)
    sfn.stop_execution(executionArn=arn, error="Stopped", cause="by the test")

    # Then its ABORTED status change is emitted well before the 60 s wait would have ended (on AWS at once;
    # moto slept the whole wait out first, so a later stack in the same process received it), and the
    # function is not invoked again
    def aborted() -> bool:
        return any(d["executionArn"] == arn and d["status"] == "ABORTED" for d in STATUS_EVENTS.emitted)

    deadline = time.monotonic() + 20
    while not aborted():
        assert time.monotonic() < deadline, "no ABORTED status change 20 s after StopExecution"
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    assert RETRY_CLOCK.requested == [60.0]
