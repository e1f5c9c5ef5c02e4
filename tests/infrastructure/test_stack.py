"""The stack as a whole: name, outputs, least privilege, cdk-nag."""

from __future__ import annotations

import json

from cdk_nag import AwsSolutionsChecks

CONTRACT_OUTPUTS = {
    "EventBusName",
    "EventRuleName",
    "MainQueueUrl",
    "MainQueueArn",
    "DeadLetterQueueUrl",
    "DeadLetterQueueArn",
    "RuleTargetDeadLetterQueueUrl",
    "StateMachineArn",
    "StateMachineConsoleUrl",
    "DispatcherFunctionName",
    "ProcessorFunctionName",
    "ErrorLoggerFunctionName",
    "IdempotencyTableName",
    "GenesysSecretName",
    "ArchiveName",
    "DashboardName",
    "RequestBudgetTableName",
    "GenesysOperatorSecretName",
}


def test_stack_named_per_environment(shipped):
    assert shipped.stack.stack_name == f"GenesysEvents-{shipped.config.name}"


def test_outputs_are_the_contract_keys(dev, prod):
    assert set(dev.json["Outputs"]) == CONTRACT_OUTPUTS
    assert set(prod.json["Outputs"]) == CONTRACT_OUTPUTS | {"AlarmTopicArn"}
    assert dev.json["Outputs"]["GenesysSecretName"]["Value"] == dev.config.secret_name
    assert (
        dev.json["Outputs"]["GenesysOperatorSecretName"]["Value"]
        == dev.config.operator_secret_name
        != dev.config.secret_name
    )


def test_each_function_has_its_own_role_and_no_managed_policies(shipped):
    roles = {json.dumps(fn["Properties"]["Role"]) for fn in shipped.resources("AWS::Lambda::Function").values()}
    assert len(roles) == 3
    for rid, role in shipped.resources("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], rid


def test_no_wildcard_actions_and_wildcard_resources_only_for_xray_and_log_delivery(shipped):
    for pid, policy in shipped.resources("AWS::IAM::Policy").items():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
            assert not any(a == "*" or a.endswith(":*") for a in actions), (pid, actions)
            if st["Resource"] == "*":
                assert all(a.startswith(("xray:", "logs:")) for a in actions), (pid, actions)


def test_dispatcher_may_start_this_machine_and_send_to_the_dlq_only(shipped):
    sm_id, _ = shipped.one("AWS::StepFunctions::StateMachine")
    dlq_id, _ = shipped.one("AWS::SQS::Queue", "QueuesDeadLetterQueue")
    statements = shipped.policy_statements("DispatcherRole")
    start = [s for s in statements if s["Action"] == "states:StartExecution"]
    send = [s for s in statements if s["Action"] == "sqs:SendMessage"]
    assert [s["Resource"] for s in start] == [{"Ref": sm_id}]
    assert [s["Resource"] for s in send] == [{"Fn::GetAtt": [dlq_id, "Arn"]}]


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(shipped):
    report = AwsSolutionsChecks().validate_scope(shipped.stack)
    findings = [f"{v.rule_name} at {[r.construct_path for r in v.violating_resources]}" for v in report.violations]
    assert findings == []


def test_an_unacknowledged_nag_finding_fails_synth_with_the_rule_and_the_resource(tmp_path):
    """The app registers AwsSolutions as a validation plugin (infra/compliance.py), so `cdk synth` itself fails."""
    import aws_cdk as cdk
    import pytest
    from aws_cdk import aws_sqs as sqs

    from infra.compliance import NAG_FAILED, add_compliance_checks
    from infra.config import load
    from infra.stack import GenesysEventsStack

    from .conftest import CDK_CONTEXT

    app = cdk.App(
        outdir=str(tmp_path),
        context={**CDK_CONTEXT, "env": "dev", "aws:cdk:bundling-stacks": []},
        builtin_cloud_formation_validation=False,
    )
    stack = GenesysEventsStack(app, config=load(app.node.try_get_context))
    sqs.Queue(stack, "Unguarded")  # no DLQ, no enforced TLS: AwsSolutions-SQS3 and -SQS4
    add_compliance_checks(app)
    with pytest.raises(RuntimeError, match=NAG_FAILED):
        app.synth()
    report = json.loads(next(tmp_path.glob("**/validation-report.json")).read_text())
    findings = {
        (v["ruleName"], r["constructPath"])
        for p in report["pluginReports"]
        for v in p["violations"]
        for r in v["violatingConstructs"]
    }
    assert ("AwsSolutions-SQS3", "GenesysEvents-dev/Unguarded/Resource") in findings
    assert all(path.startswith("GenesysEvents-dev/Unguarded") for _, path in findings)  # the shipped stack is clean


def test_the_shipped_stack_synthesizes_with_the_nag_plugin(tmp_path):
    import aws_cdk as cdk

    from infra.compliance import add_compliance_checks
    from infra.config import load
    from infra.stack import GenesysEventsStack

    from .conftest import CDK_CONTEXT

    app = cdk.App(
        outdir=str(tmp_path),
        context={**CDK_CONTEXT, "env": "prod", "aws:cdk:bundling-stacks": []},
        builtin_cloud_formation_validation=False,
    )
    GenesysEventsStack(app, config=load(app.node.try_get_context))
    add_compliance_checks(app)
    assert app.synth().get_stack_by_name("GenesysEvents-prod").template["Resources"]
