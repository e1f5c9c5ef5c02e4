"""An environment for the CLI on in-process moto: the resources the stack's outputs name,
and a CloudFormation stack GenesysEvents-test whose outputs the CLI resolves as it does on AWS.

The partner bus name (aws.partner/...) trips moto's bus-ARN handling without the
local runtime's patch (gcpipe/local/eventbridge.py); these tests use plain moto,
so the bus has an ordinary name and the org comes from the dispatcher's
GENESYS_ORG_ID, which is where the CLI looks first anyway.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from gcpipe import traffic
from gcpipe.cli import cli

REGION = "us-east-1"
ENV = "test"
ORG_ID = traffic.SAMPLE_ORG_ID
QUEUE_ID = traffic.SAMPLE_QUEUE_ID
ACD_END = traffic.topic_template("acd.end")
CUSTOMER_END = traffic.topic_template("customer.end")
# The shape infra/ gives the rule: this org's partner source; acd.end only for the
# configured queues; customer.end for all; never the attributes topic.
RULE_PATTERN = {
    "source": [{"prefix": f"aws.partner/genesys.com/cloud/{ORG_ID}/"}],
    "$or": [
        {"detail-type": [ACD_END], "detail": {"eventBody": {"queueId": [QUEUE_ID]}}},
        {"detail-type": [CUSTOMER_END]},
    ],
}
# Fails every execution whose input says so, at the Process state, as the real machine does.
STATE_MACHINE = {
    "StartAt": "Process",
    "States": {
        "Process": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Failed"}],
            "Default": "Done",
        },
        "Failed": {
            "Type": "Fail",
            "Error": "GenesysRejected",
            "Cause": "HTTP 400 from Genesys for ani tel:+13175550123",
        },
        "Done": {"Type": "Succeed"},
    },
}
SECRET = {"client_id": "cli-test-client", "client_secret": "cli-test-secret"}
# The operator's own OAuth client (gcpipe genesys sync-filter), separate from the Lambdas' (least privilege).
OPERATOR_SECRET = {"client_id": "cli-test-operator", "client_secret": "cli-test-operator-secret"}


@dataclass
class Env:
    outputs: dict[str, str]
    runner: CliRunner

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def invoke(self, *args: str, obj: dict | None = None, inject_outputs: bool = False) -> Any:
        """Run `gcpipe --local <args>` in-process through the real entry point (cli)."""
        overrides = {"in_process": True, **(obj or {})}
        if inject_outputs:
            overrides["outputs"] = self.outputs
        return self.runner.invoke(cli, ["--local", "--env", ENV, *args], obj=overrides, catch_exceptions=False)

    def queue_messages(self, url: str) -> list[dict[str, Any]]:
        """Every message in a queue, visible or not, without receiving it (moto's own store:
        receiving 1,000 messages through moto's SQS is quadratic and takes a minute)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[url.rsplit("/", 1)[-1]]
        return [
            {"MessageId": m.id, "Body": m.body, "MessageAttributes": m.message_attributes or {}}
            for m in queue._messages
        ]

    def start_execution(self, name: str, *, fail: bool, conversation_id: str = "conv-1") -> str:
        payload = {"dedupKey": name, "conversationId": conversation_id, "topic": ACD_END, "fail": fail}
        return self.client("stepfunctions").start_execution(
            stateMachineArn=self.outputs["StateMachineArn"], name=name, input=json.dumps(payload)
        )["executionArn"]


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    return buf.getvalue()


@pytest.fixture
def env() -> Env:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="pipeline", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        events = boto3.client("events", region_name=REGION)
        bus = "genesys-test-bus"
        events.create_event_bus(Name=bus)
        events.put_rule(Name="genesys-test-rule", EventBusName=bus, EventPattern=json.dumps(RULE_PATTERN))
        events.create_archive(
            ArchiveName="genesys-test-archive", EventSourceArn=events.describe_event_bus(Name=bus)["Arn"]
        )
        sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = sqs.create_queue(QueueName="genesys-test-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        main_url = sqs.create_queue(
            QueueName="genesys-test-main",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
                "VisibilityTimeout": "180",
            },
        )["QueueUrl"]
        main_arn = sqs.get_queue_attributes(QueueUrl=main_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        sm_arn = sfn.create_state_machine(name="genesys-test", definition=json.dumps(STATE_MACHINE), roleArn=role)[
            "stateMachineArn"
        ]
        lam = boto3.client("lambda", region_name=REGION)
        common = dict(Runtime="python3.12", Role=role, Handler="handler.lambda_handler", Code={"ZipFile": _zip()})
        lam.create_function(
            FunctionName="genesys-test-dispatcher",
            Environment={"Variables": {"GENESYS_ORG_ID": ORG_ID, "ALLOWED_TOPICS": f"{ACD_END},{CUSTOMER_END}"}},
            **common,
        )
        lam.create_function(
            FunctionName="genesys-test-processor",
            Environment={"Variables": {"GENESYS_DOMAIN": "mypurecloud.com", "GENESYS_SECRET_NAME": "genesys-test"}},
            **common,
        )
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="genesys-test", SecretString=json.dumps(SECRET)
        )
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="genesys-test-operator", SecretString=json.dumps(OPERATOR_SECRET)
        )
        outputs = {
            "EventBusName": bus,
            "EventRuleName": "genesys-test-rule",
            "MainQueueUrl": main_url,
            "MainQueueArn": main_arn,
            "DeadLetterQueueUrl": dlq_url,
            "DeadLetterQueueArn": dlq_arn,
            "StateMachineArn": sm_arn,
            "DispatcherFunctionName": "genesys-test-dispatcher",
            "ProcessorFunctionName": "genesys-test-processor",
            "GenesysSecretName": "genesys-test",
            "GenesysOperatorSecretName": "genesys-test-operator",
            "ArchiveName": "genesys-test-archive",
        }
        template = {
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-marker"}}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=f"GenesysEvents-{ENV}", TemplateBody=json.dumps(template)
        )
        yield Env(outputs=outputs, runner=CliRunner())


@pytest.fixture
def genesys_sim():
    from gcpipe.simulator import GenesysSimulator

    sim = GenesysSimulator(client_id=SECRET["client_id"], client_secret=SECRET["client_secret"])
    sim.add_client(OPERATOR_SECRET["client_id"], OPERATOR_SECRET["client_secret"])
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
