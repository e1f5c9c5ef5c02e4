"""The worker-side AWS fault hook (``gcpipe.local.faults``): which calls a rule matches, the error shapes it
raises (the product's ``aws_faults`` classifies them as a real service's), caps across workers, and that it
fires inside a real worker process through botocore."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from gcpipe.chaos.plan import aws_rules, make_plan
from gcpipe.local.faults import FaultRule, injector_for, raise_fault
from genesys_pipeline.aws_faults import aws_fault, dependency_unavailable

ENV = {"IDEMPOTENCY_TABLE": "idem", "MAIN_QUEUE_URL": "https://sqs/main"}


def plan(*rules: dict, tmp_path=None) -> dict:
    data: dict = {"seed": 1, "rules": list(rules)}
    if tmp_path is not None:
        (tmp_path / "tokens").mkdir(exist_ok=True)
        data.update(log=str(tmp_path / "faults.log"), tokens=str(tmp_path / "tokens"))
    return data


def rule(**kw) -> dict:
    return {
        "kind": "k",
        "handler": "processor",
        "service": "dynamodb",
        "operations": ["PutItem"],
        "probability": 1.0,
        **kw,
    }


def test_a_rule_matches_its_function_service_operation_and_table_only():
    injector = injector_for(plan(rule(table_env="IDEMPOTENCY_TABLE")), "processor.handler.lambda_handler", ENV)
    assert injector is not None
    assert injector.choose("dynamodb", "PutItem", {"TableName": "idem"}, "1") is not None
    assert injector.choose("dynamodb", "PutItem", {"TableName": "budget"}, "2") is None  # the budget table
    assert injector.choose("dynamodb", "GetItem", {"TableName": "idem"}, "3") is None
    assert injector.choose("sqs", "PutItem", {"TableName": "idem"}, "4") is None
    assert injector_for(plan(rule()), "dispatcher.handler.lambda_handler", ENV) is None


def test_the_dlq_rule_matches_queues_other_than_the_main_queue():
    injector = injector_for(
        plan(rule(handler="dispatcher", service="sqs", operations=["SendMessage"], queue_env="*DLQ*")),
        "dispatcher.handler.lambda_handler",
        ENV,
    )
    assert injector is not None
    assert injector.choose("sqs", "SendMessage", {"QueueUrl": "https://sqs/dlq"}, "1") is not None
    assert injector.choose("sqs", "SendMessage", {"QueueUrl": "https://sqs/main"}, "2") is None  # a deferral


def test_after_fires_only_later_in_the_same_invocation(tmp_path):
    injector = injector_for(
        plan(rule(service="stepfunctions", operations=["StartExecution"], after=2, handler="dispatcher")),
        "dispatcher.x",
        ENV,
    )
    assert injector is not None
    fired = [injector.choose("stepfunctions", "StartExecution", {}, "inv-1") is not None for _ in range(3)]
    assert fired == [False, False, True]
    assert injector.choose("stepfunctions", "StartExecution", {}, "inv-2") is None  # counts restart per invocation


def test_a_limit_holds_across_workers_and_each_fire_is_logged(tmp_path):
    data = plan(rule(limit=2), tmp_path=tmp_path)
    workers = [injector_for(data, "processor.h", ENV, salt=n) for n in range(3)]
    fired = [w.choose("dynamodb", "PutItem", {}, "1") for w in workers if w is not None]
    assert sum(f is not None for f in fired) == 2
    assert (tmp_path / "faults.log").read_text().splitlines() == ["k", "k"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("InternalServerError", 500),
        ("InternalServiceError", 500),
    ],
)
def test_an_error_rule_raises_the_service_error_the_product_retries(code, status):
    with pytest.raises(ClientError) as raised:
        raise_fault(FaultRule.from_json(rule(code=code, status=status)), "PutItem")
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.operation_name == "PutItem"
    assert dependency_unavailable(raised.value, "idempotency store") is not None


def test_a_connect_rule_raises_an_endpoint_connection_error():
    with pytest.raises(EndpointConnectionError) as raised:
        raise_fault(FaultRule.from_json(rule(action="connect")), "PutItem")
    fault = aws_fault(raised.value)
    assert fault is not None and fault.transient


def test_the_chaos_plan_covers_every_aws_seam_and_is_reproducible():
    kinds = {r["kind"] for r in aws_rules(0.02)}
    assert kinds == {
        "idempotency-throttle",
        "idempotency-5xx",
        "idempotency-connection-error",
        "secrets-throttle",
        "secrets-5xx",
        "start-execution-throttle",
        "dlq-send-failed",
        "dispatcher-crash-mid-batch",
        "processor-timeout-after-write",
    }
    assert make_plan(5, 10).waves == make_plan(5, 10).waves
    assert make_plan(5, 10).waves != make_plan(6, 10).waves
    every_genesys_kind = {
        "genesys-429-storm",
        "genesys-5xx-burst",
        "genesys-read-timeout",
        "genesys-connection-reset",
        "genesys-token-5xx",
        "genesys-token-revoked",
    }
    # Every kind, also with fewer waves than kinds (200 events are 4 waves of 50)
    for waves in (10, 4, 1):
        assert {f.kind for w in make_plan(5, waves).waves for f in w.faults} == every_genesys_kind, waves


def test_the_hook_fires_through_botocore_in_a_fresh_process(tmp_path):
    # As a worker does: the hook installs from the environment, then a boto3 client's call meets the rule
    # before anything is sent (no endpoint is reachable here).
    data = plan(
        rule(table_env="IDEMPOTENCY_TABLE", code="ProvisionedThroughputExceededException", status=400),
        tmp_path=tmp_path,
    )
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    script = (
        "import boto3\n"
        "from gcpipe.local import faults\n"
        "faults.install_from_env()\n"
        "c = boto3.client('dynamodb', region_name='us-east-1', endpoint_url='http://127.0.0.1:9',"
        " aws_access_key_id='x', aws_secret_access_key='x')\n"
        "try:\n"
        "    c.put_item(TableName='idem', Item={'id': {'S': '1'}})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.response['Error']['Code'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={
            "GCPIPE_FAULT_PLAN": str(path),
            "_HANDLER": "processor.handler.lambda_handler",
            "IDEMPOTENCY_TABLE": "idem",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert out.stdout.split() == ["ClientError", "ProvisionedThroughputExceededException"]
    assert (tmp_path / "faults.log").read_text().splitlines() == ["k"]
