"""IAM end to end: a template with a permission removed fails that call with AccessDenied, as on AWS, and the
event ends in a redrivable failure or on the DLQ, never lost (the accounting invariant holds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.e2e.conftest import running_harness

pytestmark = pytest.mark.e2e


def without_permission(synthesized: Path, tmp_path: Path, policy_prefix: str, action: str) -> Path:
    """A copy of the cloud assembly whose ``policy_prefix``* policy no longer grants ``action``."""
    out = tmp_path / "cdk.out"
    shutil.copytree(synthesized, out, ignore=shutil.ignore_patterns("asset.*"), symlinks=True)
    for asset in synthesized.glob("asset.*"):
        (out / asset.name).symlink_to(asset.resolve())
    template_file = out / "GenesysEvents-dev.template.json"
    template = json.loads(template_file.read_text())
    removed = 0
    for lid, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Policy" and lid.startswith(policy_prefix):
            for statement in res["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if action in actions:
                    statement["Action"] = [a for a in actions if a != action] or ["sts:GetCallerIdentity"]
                    removed += 1
    assert removed, f"{action} not granted by {policy_prefix}*"
    template_file.write_text(json.dumps(template))
    return out


def run_one_event(cdk_out: Path, check: Callable[[Any], None]) -> None:
    with running_harness(cdk_out) as e2e:
        [sent] = e2e.send(e2e.event("acd.end"))
        e2e.settle()
        acc = e2e.assert_accounted()  # never lost
        check((e2e, sent, acc))


def test_a_processor_without_put_item_on_its_idempotency_table_fails_at_process_redrivable(synthesized, tmp_path):
    cdk_out = without_permission(synthesized, tmp_path, "ProcessingProcessorRoleDefaultPolicy", "dynamodb:PutItem")

    def check(ctx: Any) -> None:
        e2e, sent, acc = ctx
        assert acc.counts["failed"] == 1 and sent.outcome == "failed"
        [execution] = e2e.executions("FAILED")
        assert execution["error"] == "IdempotencyPersistenceLayerError"  # permanent: not retried
        [line] = [ln for ln in e2e.capture.lines if ln.outcome == "failed"]
        assert line.record.failed_state == "Process"  # redrivable at the failed state
        assert not e2e.processor_writes()
        from gcpipe.local.lambda_runtime import RUNTIME

        denied = [(d.action, d.resource.rsplit("/", 1)[0]) for _, d in RUNTIME.permissions.denied]
        assert ("dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:{e2e.pipeline.account_id}:table") in denied

    run_one_event(cdk_out, check)


def test_a_dispatcher_without_start_execution_leaves_the_event_to_sqs_and_the_dlq(synthesized, tmp_path):
    cdk_out = without_permission(synthesized, tmp_path, "DispatchDispatcherRoleDefaultPolicy", "states:StartExecution")

    def check(ctx: Any) -> None:
        e2e, sent, acc = ctx
        assert acc.counts["dead_lettered"] == 1 and sent.outcome == "dead_lettered"
        assert not e2e.executions()
        from gcpipe.local.lambda_runtime import RUNTIME

        assert {d.action for _, d in RUNTIME.permissions.denied} == {"states:StartExecution"}

    run_one_event(cdk_out, check)


def test_a_dispatcher_role_without_receive_message_on_its_queue_stops_the_deploy(synthesized, tmp_path):
    # Given a template whose dispatcher role no longer grants sqs:ReceiveMessage (its event source mapping's poll)
    from gcpipe.local.deploy import TemplateError

    cdk_out = without_permission(synthesized, tmp_path, "DispatchDispatcherRoleDefaultPolicy", "sqs:ReceiveMessage")
    # When it is deployed, then it fails as CreateEventSourceMapping does on AWS, naming the call and the role
    with pytest.raises(TemplateError) as refused:
        with running_harness(cdk_out):
            pass
    message = str(refused.value)
    assert "does not have permissions to call ReceiveMessage on SQS" in message
    assert "DispatcherRole" in message and ":sqs:" in message
