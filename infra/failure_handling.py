"""The error logger: hangs off the state machine's status-change events, not off a Catch.

A Catch would move the failure away from the Process state, and Redrive would then only re-run the
error path. The status-change event also covers TIMED_OUT and ABORTED, which a Catch never sees.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from . import constants as C
from .config import EnvironmentConfig
from .function import PipelineFunction
from .processing import genesys_environment
from .request_budget import RequestBudget


class FailureHandling(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        code: lambda_.Code,
        state_machine: sfn.IStateMachine,
        execution_arn_pattern: str,
        secret: secretsmanager.ISecret,
        target_dead_letter_queue: sqs.IQueue,
        budget: RequestBudget | None = None,
    ):
        super().__init__(scope, construct_id)
        self.function = PipelineFunction(
            self,
            "ErrorLogger",
            config=config,
            code=code,
            handler=C.ERROR_LOGGER_HANDLER,
            description="Logs failed, timed-out and aborted executions and marks their conversations",
            timeout_seconds=C.ERROR_LOGGER_TIMEOUT_SECONDS,
            memory_mb=C.ERROR_LOGGER_MEMORY_MB,
            environment={  # ErrorLoggerSettings (lambdas/genesys_pipeline/settings.py)
                **genesys_environment(config),
                "MARK_FAILED_CONVERSATIONS": "true" if config.mark_failed_conversations else "false",
                "FAILURE_STATUS_ATTRIBUTE": C.FAILURE_STATUS_ATTRIBUTE,
                # Failure marks spend from the budget and honour its pause.
                **(budget.environment() if budget and config.mark_failed_conversations else {}),
            },
            retry_attempts=C.ERROR_LOGGER_ASYNC_RETRY_ATTEMPTS,
            # An invocation that still fails lands here instead of vanishing (nothing is dropped silently).
            dead_letter_queue=target_dead_letter_queue,
        )
        role = self.function.role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:GetExecutionHistory"],
                resources=[execution_arn_pattern],
            )
        )
        secret.grant_read(role)
        if budget is not None and config.mark_failed_conversations:
            budget.grant_spend(role)
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, execution_arn_pattern)}]",
                reason="Execution ARNs are <machine>:<execution name>; the name is the per-event dedup key, so the "
                "error logger reads executions of this one state machine by the name wildcard.",
            )
        )

        self.rule = events.Rule(
            self,
            "StatusChangeRule",
            description="This state machine's FAILED / TIMED_OUT / ABORTED executions to the error logger",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[C.STATUS_CHANGE_DETAIL_TYPE],
                detail={"status": C.FAILED_EXECUTION_STATUSES, "stateMachineArn": [state_machine.state_machine_arn]},
            ),
            targets=[
                targets.LambdaFunction(
                    self.function.function,
                    dead_letter_queue=target_dead_letter_queue,
                    max_event_age=Duration.hours(24),
                    retry_attempts=185,
                )
            ],
        )


def nag_resource(scope: Construct, value: str) -> str:
    """A (token) string as cdk-nag prints it in a finding id: Ref X -> <X>, Fn::GetAtt [X, A] -> <X.A>."""

    def render(node) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and "Ref" in node:
            return f"<{node['Ref']}>"
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            return "<" + ".".join(node["Fn::GetAtt"]) + ">"
        if isinstance(node, dict) and "Fn::Join" in node:
            sep, parts = node["Fn::Join"]
            return sep.join(render(p) for p in parts)
        raise ValueError(f"cannot render {node!r} as a cdk-nag resource")

    return render(Stack.of(scope).resolve(value))
