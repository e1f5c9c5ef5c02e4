"""The processor: the Lambda the Process task invokes, its idempotency table and the Genesys secret it reads."""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from . import constants as C
from .config import EnvironmentConfig
from .function import PipelineFunction, removal_policy
from .request_budget import RequestBudget


def genesys_environment(config: EnvironmentConfig) -> dict[str, str]:
    """GenesysSettings (lambdas/genesys_pipeline/settings.py). The secret by name only: never its value."""
    return {
        "GENESYS_DOMAIN": config.genesys_domain,
        "GENESYS_SECRET_NAME": config.secret_name,
        "TOKEN_REFRESH_MARGIN_SECONDS": str(C.TOKEN_REFRESH_MARGIN_SECONDS),
        "MAX_INLINE_RETRY_AFTER_SECONDS": str(C.MAX_INLINE_RETRY_AFTER_SECONDS),
        "SECRET_MAX_AGE_SECONDS": str(C.SECRET_MAX_AGE_SECONDS),
    }


class Processing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        code: lambda_.Code,
        budget: RequestBudget | None = None,
    ):
        super().__init__(scope, construct_id)
        # Created out of band (README, "Deploy"): {"client_id": ..., "client_secret": ...}. Referenced by name so
        # that no secret value ever reaches the template.
        self.secret = secretsmanager.Secret.from_secret_name_v2(self, "GenesysSecret", config.secret_name)

        # AWS::DynamoDB::Table (not TableV2's GlobalTable): one region, and what the local deployer provisions.
        self.table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=C.IDEMPOTENCY_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=C.IDEMPOTENCY_TTL_ATTRIBUTE,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=config.point_in_time_recovery
            ),
            removal_policy=removal_policy(config),
        )
        if not config.point_in_time_recovery:
            Validations.of(self.table).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-DDB3",
                    reason=f"Environment {config.name} keeps only short-lived idempotency records (TTL "
                    f"{C.IDEMPOTENCY_TTL_SECONDS // 86400} days); PITR is on where the config asks for it (prod).",
                )
            )

        environment = {
            **genesys_environment(config),
            "IDEMPOTENCY_TABLE": self.table.table_name,
            "IDEMPOTENCY_TTL_SECONDS": str(C.IDEMPOTENCY_TTL_SECONDS),
            "ATTRIBUTE_MAP": json.dumps(config.attribute_map, sort_keys=True, separators=(",", ":")),
        }
        if config.external_tag:
            environment["EXTERNAL_TAG"] = config.external_tag
        if budget is not None:
            environment.update(budget.environment())
        if config.write_back_plugin:
            environment["WRITE_BACK_PLUGIN"] = config.write_back_plugin
        self.function = PipelineFunction(
            self,
            "Processor",
            config=config,
            code=code,
            handler=C.PROCESSOR_HANDLER,
            description="Applies one Genesys event: writes participant attributes back to the conversation",
            timeout_seconds=C.PROCESSOR_TIMEOUT_SECONDS,
            memory_mb=C.PROCESSOR_MEMORY_MB,
            environment=environment,
            reserved_concurrency=config.processor_reserved_concurrency,
        )
        self.secret.grant_read(self.function.role)
        if budget is not None:
            budget.grant_spend(self.function.role)  # retries spend; 429s pause; requests check the pause
        # Powertools idempotency: get/put/update/delete of its records, nothing else.
        self.function.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[self.table.table_arn],
            )
        )
