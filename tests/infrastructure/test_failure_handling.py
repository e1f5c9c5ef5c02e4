"""Error logger: fed by this machine's status-change events on the default bus; reads its executions only."""

from __future__ import annotations

import json

from moto.events.models import EventPattern


def status_rule(s):
    return s.one("AWS::Events::Rule", "StatusChangeRule")[1]["Properties"]


def test_status_change_rule_on_the_default_bus_for_this_machine(shipped):
    sm_id, _ = shipped.one("AWS::StepFunctions::StateMachine")
    fn_id, _ = shipped.one("AWS::Lambda::Function", "ErrorLoggerFunction")
    rule = status_rule(shipped)
    assert "EventBusName" not in rule  # default bus
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [{"Ref": sm_id}]},
    }
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    assert "DeadLetterConfig" in rule["Targets"][0]


def test_pattern_matches_failed_but_not_succeeded(dev):
    pattern = json.loads(
        json.dumps(status_rule(dev)["EventPattern"]).replace(
            json.dumps({"Ref": dev.one("AWS::StepFunctions::StateMachine")[0]}), '"arn:sm"'
        )
    )
    event = {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"status": "FAILED", "stateMachineArn": "arn:sm"},
    }
    assert EventPattern.load(json.dumps(pattern)).matches_event(event)
    event["detail"]["status"] = "SUCCEEDED"
    assert not EventPattern.load(json.dumps(pattern)).matches_event(event)


def test_error_logger_environment(shipped):
    fn = shipped.function("ErrorLogger")
    env = fn["Environment"]["Variables"]
    assert fn["Handler"] == "error_logger.handler.lambda_handler"
    assert env["MARK_FAILED_CONVERSATIONS"] == ("true" if shipped.config.mark_failed_conversations else "false")
    assert env["FAILURE_STATUS_ATTRIBUTE"] == "aws_processing_status"
    assert env["GENESYS_DOMAIN"] == shipped.config.genesys_domain
    assert env["GENESYS_SECRET_NAME"] == shipped.config.secret_name


def test_error_logger_reads_this_machines_executions_and_the_secret(shipped):
    statements = shipped.policy_statements("ErrorLoggerRole")
    states = [s for s in statements if any(a.startswith("states:") for a in s["Action"])]
    assert len(states) == 1
    assert sorted(states[0]["Action"]) == ["states:DescribeExecution", "states:GetExecutionHistory"]
    assert f":execution:{shipped.config.stack_name}-process-event:*" in json.dumps(states[0]["Resource"])
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"secretsmanager:GetSecretValue"} <= actions
    # DynamoDB: the request budget only (failure marks spend from it), never the idempotency records.
    budget_id, _ = shipped.one("AWS::DynamoDB::Table", "RequestBudget")
    ddb = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert [(sorted(s["Action"]), s["Resource"]) for s in ddb] == [
        (["dynamodb:GetItem", "dynamodb:UpdateItem"], {"Fn::GetAtt": [budget_id, "Arn"]})
    ]
