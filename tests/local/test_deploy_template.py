"""The deployer and LocalPipeline, on a small CDK-shaped template whose handlers are stubs.

This exercises the whole local chain through every adapter: PutPartnerEvents ->
partner bus rule -> SQS (redrive) -> poller -> dispatcher -> Step Functions ->
processor (fails by name) -> status-change event on the default bus -> rule ->
error logger. The real stack's template is tested in test_real_stack.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gcpipe.local.deploy import GenesysEndpoint
from gcpipe.local.pipeline import LocalPipeline

SOURCE = "aws.partner/genesys.com/cloud/org-1/contact-center-events"
ASSET = "asset.0123abcd"
KEY = "0123abcd.zip"
BUCKET = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}

DISPATCHER = """
import json, os, boto3
sfn = boto3.client("stepfunctions")
def lambda_handler(event, context):
    failures = []
    for r in event["Records"]:
        body = json.loads(r["body"])
        if body["detail"].get("poison"):
            failures.append({"itemIdentifier": r["messageId"]})
            continue
        name = body["detail"]["key"]
        try:
            sfn.start_execution(stateMachineArn=os.environ["STATE_MACHINE_ARN"], name=name, input=json.dumps(body["detail"]))
        except sfn.exceptions.ExecutionAlreadyExists:
            pass
    return {"batchItemFailures": failures}
"""
PROCESSOR = """
import os
class GenesysRejected(Exception):
    pass
def lambda_handler(event, context):
    assert os.environ["GENESYS_API_BASE_URL"] == "http://simulator.local"
    if event["event"].get("reject"):
        raise GenesysRejected("400 from Genesys")
    return {"applied": event["event"]["key"], "execution": event["executionName"]}
"""
LOGGER = """
import json, os
def lambda_handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event["detail"]) + "\\n")
"""


def _role(name):
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}
                ],
            }
        },
    }


def _function(handler, role, env):
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": BUCKET, "S3Key": KEY},
            "Handler": handler,
            "Runtime": "python3.12",
            "Timeout": 30,
            "Role": {"Fn::GetAtt": [role, "Arn"]},
            "Environment": {"Variables": env},
        },
    }


def write_assembly(root: Path, out_file: Path) -> Path:
    asset = root / ASSET / "local_stub"
    asset.mkdir(parents=True)
    (asset / "__init__.py").write_text("")
    (asset / "dispatcher.py").write_text(DISPATCHER)
    (asset / "processor.py").write_text(PROCESSOR)
    (asset / "error_logger.py").write_text(LOGGER)
    definition = {
        "StartAt": "Process",
        "States": {
            "Process": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "End": True,
                "OutputPath": "$.Payload",
                "Parameters": {
                    "FunctionName": "${ProcessorArn}",
                    "Payload": {"event.$": "$", "executionName.$": "$$.Execution.Name"},
                },
                "Retry": [{"ErrorEquals": ["GenesysUnavailable"], "IntervalSeconds": 30, "MaxAttempts": 3}],
            }
        },
    }
    template = {
        "Parameters": {
            "BootstrapVersion": {
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": "/cdk-bootstrap/hnb659fds/version",
            }
        },
        "Resources": {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": SOURCE, "EventSourceName": SOURCE}},
            "Archive": {
                "Type": "AWS::Events::Archive",
                "Properties": {
                    "SourceArn": {"Fn::GetAtt": ["Bus", "Arn"]},
                    "RetentionDays": 7,
                    "EventPattern": {"account": [{"Ref": "AWS::AccountId"}]},
                },
            },
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}},
            "Main": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 180,
                    "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}, "maxReceiveCount": 2},
                },
            },
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventBusName": {"Ref": "Bus"},
                    "State": "ENABLED",
                    "EventPattern": {"source": [{"prefix": "aws.partner/genesys.com"}], "detail-type": ["acd.end"]},
                    "Targets": [{"Id": "Target0", "Arn": {"Fn::GetAtt": ["Main", "Arn"]}}],
                },
            },
            "ProcessorRole": _role("p"),
            "DispatcherRole": _role("d"),
            "LoggerRole": _role("l"),
            "MachineRole": _role("m"),
            # What the stub dispatcher's calls need (the local runtime checks every call against the role)
            "DispatcherPolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "DispatcherPolicy",
                    "Roles": [{"Ref": "DispatcherRole"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": "Machine"}},
                            # what its event source mapping polls with (CreateEventSourceMapping checks it)
                            {
                                "Effect": "Allow",
                                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                                "Resource": {"Fn::GetAtt": ["Main", "Arn"]},
                            },
                        ],
                    },
                },
            },
            "Processor": _function(
                "local_stub.processor.lambda_handler",
                "ProcessorRole",
                {"GENESYS_DOMAIN": "mypurecloud.com", "GENESYS_SECRET_NAME": "genesys/test/client"},
            ),
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": json.dumps(definition),
                    "StateMachineType": "STANDARD",
                    "DefinitionSubstitutions": {"ProcessorArn": {"Fn::GetAtt": ["Processor", "Arn"]}},
                    "RoleArn": {"Fn::GetAtt": ["MachineRole", "Arn"]},
                },
            },
            "Dispatcher": _function(
                "local_stub.dispatcher.lambda_handler",
                "DispatcherRole",
                {"STATE_MACHINE_ARN": {"Ref": "Machine"}, "DEAD_LETTER_QUEUE_URL": {"Ref": "Dlq"}},
            ),
            "Mapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["Main", "Arn"]},
                    "FunctionName": {"Ref": "Dispatcher"},
                    "BatchSize": 10,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "ScalingConfig": {"MaximumConcurrency": 2},
                },
            },
            "Logger": _function("local_stub.error_logger.lambda_handler", "LoggerRole", {"OUT": str(out_file)}),
            "StatusRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "State": "ENABLED",
                    "EventPattern": {
                        "source": ["aws.states"],
                        "detail-type": ["Step Functions Execution Status Change"],
                        "detail": {
                            "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                            "stateMachineArn": [{"Ref": "Machine"}],
                        },
                    },
                    "Targets": [{"Id": "Target0", "Arn": {"Fn::GetAtt": ["Logger", "Arn"]}}],
                },
            },
            "LoggerPermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {"Action": "lambda:InvokeFunction", "FunctionName": {"Fn::GetAtt": ["Logger", "Arn"]}},
            },
        },
        "Outputs": {
            "EventBusName": {"Value": {"Ref": "Bus"}},
            "EventRuleName": {"Value": {"Ref": "Rule"}},
            "MainQueueUrl": {"Value": {"Ref": "Main"}},
            "MainQueueArn": {"Value": {"Fn::GetAtt": ["Main", "Arn"]}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "Dlq"}},
            "StateMachineArn": {"Value": {"Ref": "Machine"}},
            "DispatcherFunctionName": {"Value": {"Ref": "Dispatcher"}},
            "ProcessorFunctionName": {"Value": {"Ref": "Processor"}},
            "ErrorLoggerFunctionName": {"Value": {"Ref": "Logger"}},
            "ArchiveName": {"Value": {"Ref": "Archive"}},
            "GenesysSecretName": {"Value": "genesys/test/client"},
        },
    }
    (root / "GenesysEvents-test.template.json").write_text(json.dumps(template))
    (root / "GenesysEvents-test.assets.json").write_text(
        json.dumps(
            {
                "files": {
                    "0123abcd": {
                        "source": {"path": ASSET, "packaging": "zip"},
                        "destinations": {
                            "d": {"bucketName": "cdk-hnb659fds-assets-123456789012-us-east-1", "objectKey": KEY}
                        },
                    }
                }
            }
        )
    )
    return root


@pytest.fixture
def pipeline(tmp_path):
    out = tmp_path / "logged.jsonl"
    cdk_out = write_assembly(tmp_path / "cdk.out", out)
    genesys = GenesysEndpoint("http://simulator.local", "sim-client", "sim-secret")
    with LocalPipeline("test", cdk_out=cdk_out, genesys=genesys) as p:
        p.logged = out
        yield p


def _event(key, **extra):
    return {"source": SOURCE, "detail-type": "acd.end", "detail": {"key": key, **extra}}


def test_the_stack_is_created_from_the_template_with_only_the_genesys_overrides(pipeline):
    template = pipeline.assembly.template["Resources"]
    out = pipeline.outputs
    rule = pipeline.client("events").describe_rule(Name=out["EventRuleName"], EventBusName=out["EventBusName"])
    assert json.loads(rule["EventPattern"]) == template["Rule"]["Properties"]["EventPattern"]
    attrs = pipeline.client("sqs").get_queue_attributes(QueueUrl=out["MainQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert attrs["VisibilityTimeout"] == "180"
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] == 2
    definition = json.loads(
        pipeline.client("stepfunctions").describe_state_machine(stateMachineArn=out["StateMachineArn"])["definition"]
    )
    assert definition["States"]["Process"]["Parameters"]["FunctionName"].endswith(
        ":function:" + out["ProcessorFunctionName"]
    )
    fns = pipeline.functions
    assert fns["DispatcherFunctionName"]["Handler"] == "local_stub.dispatcher.lambda_handler"
    assert fns["DispatcherFunctionName"]["Environment"]["Variables"] == {
        "STATE_MACHINE_ARN": out["StateMachineArn"],
        "DEAD_LETTER_QUEUE_URL": out["DeadLetterQueueUrl"],
    }
    assert fns["ProcessorFunctionName"]["Environment"]["Variables"] == {
        "GENESYS_DOMAIN": "mypurecloud.com",
        "GENESYS_SECRET_NAME": "genesys/test/client",
        "GENESYS_API_BASE_URL": "http://simulator.local",
        "GENESYS_LOGIN_BASE_URL": "http://simulator.local",
    }
    secret = pipeline.client("secretsmanager").get_secret_value(SecretId="genesys/test/client")["SecretString"]
    assert json.loads(secret) == {"client_id": "sim-client", "client_secret": "sim-secret"}
    assert pipeline.poller.config.report_batch_item_failures and pipeline.poller.config.maximum_concurrency == 2
    assert pipeline.stack.skipped == {"LoggerPermission": "AWS::Lambda::Permission"}


def test_events_flow_end_to_end_and_failures_reach_the_error_logger(pipeline):
    pipeline.put_events([_event("k-ok"), _event("k-bad", reject=True), _event("k-ok")])  # one duplicate

    assert pipeline.drain(timeout=10)

    by_name = {e["name"]: e for e in pipeline.executions()}
    assert set(by_name) == {"k-ok", "k-bad"}
    assert by_name["k-ok"]["status"] == "SUCCEEDED"
    assert json.loads(by_name["k-ok"]["output"]) == {"applied": "k-ok", "execution": "k-ok"}
    assert by_name["k-bad"]["status"] == "FAILED" and by_name["k-bad"]["error"] == "GenesysRejected"
    [logged] = [json.loads(line) for line in pipeline.logged.read_text().splitlines()]
    assert logged["name"] == "k-bad" and logged["status"] == "FAILED"
    assert pipeline.wait_until_idle(5)


def test_a_poison_record_is_redriven_to_the_dlq_and_can_be_moved_back(pipeline):
    pipeline.put_events([_event("k-poison", poison=True)])
    for _ in range(2):  # maxReceiveCount
        pipeline.drain(timeout=5)
        pipeline.expire_in_flight()
    pipeline.drain(timeout=5)

    [dead] = pipeline.queue_messages("DeadLetterQueueUrl")
    assert json.loads(dead["Body"])["detail"] == {"key": "k-poison", "poison": True}
    assert pipeline.redrive_dead_letters() == 1
    assert pipeline.queue_messages("DeadLetterQueueUrl") == []


def test_replay_of_a_failed_execution(pipeline):
    pipeline.put_events([_event("k-bad", reject=True)])
    pipeline.drain(timeout=10)
    [failed] = pipeline.executions("FAILED")

    replay = pipeline.replay(failed["executionArn"])
    pipeline.drain(timeout=10)

    assert replay.new_execution_arn.endswith(":k-bad-replay-1")
    assert "not AWS RedriveExecution" in replay.note
