"""The real stack: LocalPipeline from the CDK app's synthesized template (GenesysEvents-dev).

Synthesizes once per session with the pinned CDK CLI, bundling skipped (the
asset is the lambdas/ source dir). Skipped, saying why, while the CDK app does
not exist yet. What moto holds is compared with the template's own
properties: nothing here restates the configuration.
"""

from __future__ import annotations

import json

import pytest

from gcpipe.local.deploy import GenesysEndpoint
from gcpipe.local.pipeline import LocalPipeline

ENV = "dev"
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
}


@pytest.fixture(scope="module")
def pipeline(synthesized):
    genesys = GenesysEndpoint("http://127.0.0.1:9", "sim-client", "sim-secret")
    with LocalPipeline(ENV, cdk_out=synthesized, genesys=genesys) as p:
        yield p


def _resolved(pipeline, rtype):
    return [r for r in pipeline.stack.resources.values() if r.type == rtype]


def test_outputs_are_the_contract_keys(pipeline):
    assert set(pipeline.outputs) >= CONTRACT_OUTPUTS


def test_rules_queues_machine_and_functions_are_the_templates(pipeline):
    events, sqs = pipeline.client("events"), pipeline.client("sqs")
    for rule in _resolved(pipeline, "AWS::Events::Rule"):
        got = events.describe_rule(Name=rule.ref, EventBusName=rule.properties.get("EventBusName", "default"))
        assert json.loads(got["EventPattern"]) == rule.properties["EventPattern"]
    for queue in _resolved(pipeline, "AWS::SQS::Queue"):
        attrs = sqs.get_queue_attributes(QueueUrl=queue.ref, AttributeNames=["All"])["Attributes"]
        if "VisibilityTimeout" in queue.properties:
            assert attrs["VisibilityTimeout"] == str(queue.properties["VisibilityTimeout"])
        if "RedrivePolicy" in queue.properties:
            assert json.loads(attrs["RedrivePolicy"]) == queue.properties["RedrivePolicy"]
    [machine] = _resolved(pipeline, "AWS::StepFunctions::StateMachine")
    definition = pipeline.client("stepfunctions").describe_state_machine(stateMachineArn=machine.ref)["definition"]
    expected = machine.properties["DefinitionString"]
    for k, v in (machine.properties.get("DefinitionSubstitutions") or {}).items():
        expected = expected.replace("${" + k + "}", str(v))
    assert json.loads(definition) == json.loads(expected)
    lam = pipeline.client("lambda")
    for fn in _resolved(pipeline, "AWS::Lambda::Function"):
        cfg = lam.get_function_configuration(FunctionName=fn.ref)
        assert cfg["Handler"] == fn.properties["Handler"]
        declared = {k: str(v) for k, v in fn.properties.get("Environment", {}).get("Variables", {}).items()}
        actual = cfg["Environment"]["Variables"]
        local_overrides = {"GENESYS_API_BASE_URL", "GENESYS_LOGIN_BASE_URL"}
        assert {k: v for k, v in actual.items() if k not in local_overrides} == {
            k: v for k, v in declared.items() if k not in local_overrides
        }
    assert pipeline.poller.config.queue_arn == pipeline.outputs["MainQueueArn"]
