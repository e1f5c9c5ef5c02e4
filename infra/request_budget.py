"""The Genesys request budget: one DynamoDB item per environment that every function spends from.

Its own table, not the idempotency table: different access pattern (one hot item, conditional
writes), no TTL, and a grant that lets no function touch the other's records. The state is
disposable (a fresh item is an idle budget), so it needs no point-in-time recovery.
Design and cost: docs/request-budget.md; logic: lambdas/genesys_pipeline/budget.py.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from . import constants as C
from .config import EnvironmentConfig, GenesysRateLimit
from .function import removal_policy


class RequestBudget(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, rate_limit: GenesysRateLimit):
        super().__init__(scope, construct_id)
        self.rate_limit = rate_limit
        self.send_spread_seconds = config.dispatcher.max_batching_window_seconds + C.BUDGET_SEND_SPREAD_BASE_SECONDS
        # AWS::DynamoDB::Table (not TableV2's GlobalTable): one region, and what the local deployer provisions.
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=C.BUDGET_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=removal_policy(config),
        )
        Validations.of(self.table).acknowledge(
            Acknowledgment(
                id="AwsSolutions-DDB3",
                reason="The request budget holds one item of scheduling state that is rebuilt from nothing "
                "(an absent item is an idle budget); there is nothing to recover.",
            )
        )

    def environment(self) -> dict[str, str]:
        """BudgetSettings (lambdas/genesys_pipeline/settings.py)."""
        return {
            "REQUEST_BUDGET_TABLE": self.table.table_name,
            "REQUEST_BUDGET_KEY": C.BUDGET_ITEM_KEY,
            "REQUEST_BUDGET_RATE": f"{self.rate_limit.requests_per_second:g}",
            "REQUEST_BUDGET_BURST": str(self.rate_limit.burst),
            "REQUEST_BUDGET_PAUSE_CACHE_SECONDS": str(C.BUDGET_PAUSE_CACHE_SECONDS),
            # Admission runs under the rate by what these take (budget.admission_rate), so that the
            # requests reaching Genesys fit its per-minute window.
            "REQUEST_BUDGET_WINDOW_SECONDS": str(C.BUDGET_LIMIT_WINDOW_SECONDS),
            "REQUEST_BUDGET_SEND_SPREAD_SECONDS": str(self.send_spread_seconds),
        }

    def grant_spend(self, role: iam.IRole) -> None:
        """Read the state (pause checks, conflicts) and update it (reserve, spend, pause): nothing else."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[self.table.table_arn],
            )
        )
