"""GenesysEvents-<env>: composes the capability constructs and publishes the contract's outputs.

The stack defines no resource itself; it wires the constructs together and owns cross-cutting
concerns (tags, outputs). Output keys are the contract in docs/contracts.md.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Environment, Fn, Stack, Tags
from constructs import Construct

from .bundling import lambda_code
from .config import EnvironmentConfig
from .data_protection import LogDataProtection
from .dispatch import Dispatch
from .failure_handling import FailureHandling
from .ingestion import Ingestion
from .observability import Observability
from .orchestration import Orchestration
from .processing import Processing
from .queues import EventQueues
from .request_budget import RequestBudget


class GenesysEventsStack(Stack):
    def __init__(self, scope: Construct, *, config: EnvironmentConfig, **kwargs):
        env = Environment(account=config.account, region=config.region) if (config.account or config.region) else None
        super().__init__(
            scope,
            config.stack_name,
            env=env,
            description=f"Genesys Cloud events off EventBridge, processed on AWS ({config.name})",
            **kwargs,
        )
        self.config = config
        Tags.of(self).add("Application", "genesys-event-pipeline")
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

        self.data_protection = LogDataProtection(self, "DataProtection", config=config)
        code = lambda_code(config.lambda_architecture)
        self.queues = EventQueues(self, "Queues", config=config)
        # None when genesysRateLimit is null: every function then calls Genesys unscheduled.
        self.request_budget = (
            RequestBudget(self, "RequestBudget", config=config, rate_limit=config.genesys_rate_limit)
            if config.genesys_rate_limit
            else None
        )
        self.processing = Processing(self, "Processing", config=config, code=code, budget=self.request_budget)
        self.orchestration = Orchestration(
            self, "Orchestration", config=config, processor=self.processing.function.function
        )
        state_machine = self.orchestration.state_machine
        self.dispatch = Dispatch(
            self,
            "Dispatch",
            config=config,
            code=code,
            main_queue=self.queues.main_queue,
            dead_letter_queue=self.queues.dead_letter_queue,
            state_machine=state_machine,
            execution_arn_pattern=self.orchestration.execution_arn_pattern(),
            budget=self.request_budget,
        )
        self.failure_handling = FailureHandling(
            self,
            "FailureHandling",
            config=config,
            code=code,
            state_machine=state_machine,
            execution_arn_pattern=self.orchestration.execution_arn_pattern(),
            secret=self.processing.secret,
            target_dead_letter_queue=self.queues.rule_target_dead_letter_queue,
            budget=self.request_budget,
        )
        self.ingestion = Ingestion(
            self,
            "Ingestion",
            config=config,
            main_queue=self.queues.main_queue,
            target_dead_letter_queue=self.queues.rule_target_dead_letter_queue,
        )
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            main_queue=self.queues.main_queue,
            dead_letter_queue=self.queues.dead_letter_queue,
            rule_target_dead_letter_queue=self.queues.rule_target_dead_letter_queue,
            state_machine=state_machine,
            functions={
                "Dispatcher": self.dispatch.function.function,
                "Processor": self.processing.function.function,
                "ErrorLogger": self.failure_handling.function.function,
            },
        )
        self._outputs()

    def _outputs(self) -> None:
        q, sm = self.queues, self.orchestration.state_machine
        outputs = {
            "EventBusName": (self.ingestion.bus.event_bus_name, "The Genesys partner event bus"),
            "EventRuleName": (self.ingestion.rule.rule_name, "Rule: configured topics/queues -> main queue"),
            "MainQueueUrl": (q.main_queue.queue_url, "Main queue (the dispatcher's event source)"),
            "MainQueueArn": (q.main_queue.queue_arn, "Main queue ARN"),
            "DeadLetterQueueUrl": (q.dead_letter_queue.queue_url, "Dead-lettered events (replay with gcpipe dlq)"),
            "DeadLetterQueueArn": (q.dead_letter_queue.queue_arn, "Main queue's DLQ ARN"),
            "RuleTargetDeadLetterQueueUrl": (
                q.rule_target_dead_letter_queue.queue_url,
                "Events EventBridge could not deliver",
            ),
            "StateMachineArn": (sm.state_machine_arn, "The Process state machine"),
            "StateMachineConsoleUrl": (
                Fn.join(
                    "",
                    [
                        "https://",
                        Aws.REGION,
                        ".console.aws.amazon.com/states/home?region=",
                        Aws.REGION,
                        "#/statemachines/view/",
                        sm.state_machine_arn,
                    ],
                ),
                "Executions in the console (Redrive failures from here)",
            ),
            "DispatcherFunctionName": (self.dispatch.function.function.function_name, "Dispatcher Lambda"),
            "ProcessorFunctionName": (self.processing.function.function.function_name, "Processor Lambda"),
            "ErrorLoggerFunctionName": (self.failure_handling.function.function.function_name, "Error logger Lambda"),
            "IdempotencyTableName": (self.processing.table.table_name, "Processor idempotency records"),
            "GenesysSecretName": (
                self.config.secret_name,
                "Secrets Manager secret with the Genesys OAuth client credentials",
            ),
            "ArchiveName": (self.ingestion.archive.archive_name, "EventBridge archive of the partner bus"),
            "DashboardName": (self.observability.dashboard.dashboard_name, "CloudWatch dashboard"),
        }
        if self.request_budget is not None:
            outputs["RequestBudgetTableName"] = (
                self.request_budget.table.table_name,
                "The Genesys request budget's state (one item)",
            )
        if self.config.operator_secret_name:
            # Only named: no function reads it (gcpipe genesys sync-filter does, with the operator's AWS credentials).
            outputs["GenesysOperatorSecretName"] = (
                self.config.operator_secret_name,
                "Secret of the operator Genesys OAuth client (gcpipe genesys sync-filter)",
            )
        if self.observability.alarm_topic is not None:
            outputs["AlarmTopicArn"] = (self.observability.alarm_topic.topic_arn, "SNS topic the alarms notify")
        elif self.config.alarm_topic_arn:
            outputs["AlarmTopicArn"] = (self.config.alarm_topic_arn, "SNS topic the alarms notify (alarmTopicArn)")
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
