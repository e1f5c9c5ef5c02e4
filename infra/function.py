"""A pipeline Lambda function: its own role, its own log group, the shared code asset.

Each function gets a dedicated role holding only what it needs (the constructs add their grants);
logs go to an explicit log group with the environment's retention, written through the role's own
inline statement instead of the AWS-managed AWSLambdaBasicExecutionRole (which is not scoped).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Validations, Acknowledgment
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from . import constants as C
from .config import LOG_RETENTION_DAYS, EnvironmentConfig

ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
RUNTIMES = {"3.12": lambda_.Runtime.PYTHON_3_12, "3.13": lambda_.Runtime.PYTHON_3_13}  # C.PYTHON_VERSION -> runtime


def removal_policy(config: EnvironmentConfig) -> RemovalPolicy:
    return RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY


class PipelineFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        code: lambda_.Code,
        handler: str,
        description: str,
        timeout_seconds: int,
        memory_mb: int,
        environment: dict[str, str],
        reserved_concurrency: int | None = None,
        **function_kwargs,
    ):
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention(config),
            removal_policy=removal_policy(config),
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{config.stack_name} {construct_id}: its own resources only",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIMES[C.PYTHON_VERSION],
            architecture=ARCHITECTURES[config.lambda_architecture],
            code=code,
            handler=handler,
            description=description,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrency,
            environment={
                "POWERTOOLS_SERVICE_NAME": C.SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": C.METRICS_NAMESPACE,
                "ENVIRONMENT": config.name,  # the `environment` dimension of every metric (settings.py)
                "LOG_LEVEL": config.log_level,
                **environment,
            },
            **function_kwargs,
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray active tracing: xray:PutTraceSegments/PutTelemetryRecords do not support "
                "resource-level permissions (AWS X-Ray IAM reference).",
            ),
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason=f"Python {C.PYTHON_VERSION} is pinned on purpose: the asset's wheels are built for "
                f"cp{C.PYTHON_VERSION.replace('.', '')} at synth time and the Lambda code is tested on it "
                f"(the venv's Python); its Lambda deprecation date is {C.PYTHON_RUNTIME_DEPRECATION}.",
            ),
        )


def _retention_enum(days: int) -> str:
    """CloudWatch retention in days -> the RetentionDays member name (same order as LOG_RETENTION_DAYS)."""
    names = [m.name for m in logs.RetentionDays if m.name != "INFINITE"]
    return dict(zip(LOG_RETENTION_DAYS, names, strict=True))[days]


def log_retention(config: EnvironmentConfig) -> logs.RetentionDays:
    return logs.RetentionDays[_retention_enum(config.log_retention_days)]
