"""Processor: reserved concurrency, ProcessorSettings environment, idempotency table, the secret by name."""

from __future__ import annotations

import json
import re

from infra import constants as C

from .conftest import ROOT


def test_reserved_concurrency_from_config(shipped):
    assert (
        shipped.function("Processor")["ReservedConcurrentExecutions"] == shipped.config.processor_reserved_concurrency
    )


def test_processor_environment(shipped):
    fn = shipped.function("Processor")
    table_id, _ = shipped.one("AWS::DynamoDB::Table", "IdempotencyTable")
    env = fn["Environment"]["Variables"]
    c = shipped.config
    assert fn["Handler"] == "processor.handler.lambda_handler"
    assert env["GENESYS_DOMAIN"] == c.genesys_domain
    assert env["GENESYS_SECRET_NAME"] == c.secret_name
    assert env["IDEMPOTENCY_TABLE"] == {"Ref": table_id}
    assert json.loads(env["ATTRIBUTE_MAP"]) == c.attribute_map
    assert env.get("EXTERNAL_TAG") == c.external_tag
    assert "GENESYS_API_BASE_URL" not in env  # https://api.<domain> by default; only the local run overrides it


def test_idempotency_table_has_powertools_defaults(shipped):
    shipped.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_pitr_and_retention_in_prod_only(dev, prod):
    for s, pitr, policy in ((dev, False, "Delete"), (prod, True, "Retain")):
        _, table = s.one("AWS::DynamoDB::Table", "IdempotencyTable")
        assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is pitr
        assert table["DeletionPolicy"] == policy


def test_no_secret_value_anywhere_in_the_template(shipped):
    text = json.dumps(shipped.json)
    shipped.template.resource_count_is("AWS::SecretsManager::Secret", 0)
    for needle in ("client_secret", "SecretString", "GenerateSecretString", "{{resolve:secretsmanager"):
        assert needle not in text


def test_processor_reads_the_secret_and_its_table_only(shipped):
    table_id, _ = shipped.one("AWS::DynamoDB::Table", "IdempotencyTable")
    statements = shipped.policy_statements("ProcessorRole")
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    budget_id, _ = shipped.one("AWS::DynamoDB::Table", "RequestBudget")
    ddb = {s["Resource"]["Fn::GetAtt"][0]: sorted(s["Action"]) for s in statements if "dynamodb:GetItem" in s["Action"]}
    assert ddb == {
        table_id: ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        budget_id: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    }  # the budget: read and update only
    secret = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]][0]
    assert f':secret:{shipped.config.secret_name}-??????"' in json.dumps(secret["Resource"])


SETTINGS = (ROOT / "lambdas/genesys_pipeline/settings.py").read_text()
DECLARED = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', SETTINGS)) | {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
}


def test_every_variable_the_stack_sets_is_one_settings_py_reads(shipped):
    for fid, fn in shipped.resources("AWS::Lambda::Function").items():
        unknown = set(fn["Properties"]["Environment"]["Variables"]) - DECLARED
        assert not unknown, f"{fid} sets variables settings.py does not read: {unknown}"


def test_required_settings_are_set(shipped):
    required = {
        "Dispatcher": {"STATE_MACHINE_ARN", "DEAD_LETTER_QUEUE_URL", "ALLOWED_TOPICS"},
        "Processor": {"GENESYS_DOMAIN", "GENESYS_SECRET_NAME", "IDEMPOTENCY_TABLE"},
        "ErrorLogger": {"GENESYS_DOMAIN", "GENESYS_SECRET_NAME", "MARK_FAILED_CONVERSATIONS"},
    }
    for name, keys in required.items():
        assert keys <= set(shipped.function(name)["Environment"]["Variables"]), name


def test_functions_python312_with_configured_architecture_and_tracing(shipped):
    arch = shipped.config.lambda_architecture
    for fid, fn in shipped.resources("AWS::Lambda::Function").items():
        p = fn["Properties"]
        assert p["Runtime"] == "python3.12", fid
        assert p["Architectures"] == [arch], fid
        assert p["TracingConfig"] == {"Mode": "Active"}, fid
        assert "LogGroup" in p["LoggingConfig"], fid


def test_every_log_group_has_a_retention(shipped):
    groups = shipped.resources("AWS::Logs::LogGroup")
    assert len(groups) == 5  # three functions, the state machine, the data protection audit
    for gid, g in groups.items():
        assert g["Properties"]["RetentionInDays"] == shipped.config.log_retention_days, gid


def test_asset_excludes_tests_and_caches():
    assert {"tests", "**/__pycache__", "*.pyc"} <= set(C.ASSET_EXCLUDES)
