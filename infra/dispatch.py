"""The dispatcher: drains the main queue in batches and starts one execution per event (name = dedup key)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from . import constants as C
from .config import EnvironmentConfig
from .failure_handling import nag_resource
from .request_budget import RequestBudget


class Dispatch(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        code: lambda_.Code,
        main_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        state_machine: sfn.IStateMachine,
        execution_arn_pattern: str,
        budget: RequestBudget | None = None,
    ):
        super().__init__(scope, construct_id)
        from .function import PipelineFunction

        self.function = PipelineFunction(
            self,
            "Dispatcher",
            config=config,
            code=code,
            handler=C.DISPATCHER_HANDLER,
            description="Validates Genesys events from the main queue and starts one execution each",
            timeout_seconds=C.DISPATCHER_TIMEOUT_SECONDS,
            memory_mb=C.DISPATCHER_MEMORY_MB,
            environment={  # DispatcherSettings (lambdas/genesys_pipeline/settings.py)
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "DEAD_LETTER_QUEUE_URL": dead_letter_queue.queue_url,
                "GENESYS_ORG_ID": config.genesys_org_id,
                "ALLOWED_TOPICS": ",".join(config.topics),
                "ALLOWED_QUEUE_IDS": ",".join(config.queue_ids),
                "MAX_EVENT_AGE_SECONDS": str(config.max_event_age_seconds),
                "START_EXECUTION_CONCURRENCY": str(config.dispatcher.start_execution_concurrency),
                **(_admission_environment(config, budget, main_queue) if budget else {}),
            },
        )
        self.function.function.add_event_source(
            sources.SqsEventSource(
                main_queue,
                batch_size=config.dispatcher.batch_size,
                max_batching_window=Duration.seconds(config.dispatcher.max_batching_window_seconds),
                max_concurrency=config.dispatcher.max_concurrency,
                report_batch_item_failures=True,
            )
        )
        role = self.function.role
        role.add_to_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine.state_machine_arn])
        )
        # A redelivered message whose execution exists and has closed: was it this message's own start?
        role.add_to_policy(iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[execution_arn_pattern]))
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, execution_arn_pattern)}]",
                reason="Execution ARNs are <machine>:<execution name>; the name is the per-event dedup key, so the "
                "dispatcher describes executions of this one state machine by the name wildcard (a redelivered "
                "message: was the closed execution its own start?).",
            )
        )
        # Malformed or unsupported events are dead-lettered directly, with their reason.
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[dead_letter_queue.queue_arn]))
        if budget is not None:
            # Admission: reserve slots, and re-send deferred events to the main queue with DelaySeconds.
            budget.grant_spend(role)
            role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[main_queue.queue_arn]))


def _admission_environment(config: EnvironmentConfig, budget: RequestBudget, main_queue: sqs.IQueue) -> dict[str, str]:
    return {
        **budget.environment(),
        "MAIN_QUEUE_URL": main_queue.queue_url,
        "GENESYS_REQUESTS_PER_EVENT": str(config.genesys_requests_per_event),
    }
