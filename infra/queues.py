"""The main queue the rule feeds, its DLQ (redrive), and the rule target's own DLQ."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from . import constants as C
from .config import EnvironmentConfig
from .function import removal_policy


def visibility_timeout_seconds(config: EnvironmentConfig) -> int:
    """>= 6x the dispatcher timeout (+ its batching window), so a slow batch is not handed out twice.
    Derived here from constants.DISPATCHER_TIMEOUT_SECONDS; never typed twice."""
    return C.VISIBILITY_TIMEOUT_FACTOR * C.DISPATCHER_TIMEOUT_SECONDS + config.dispatcher.max_batching_window_seconds


class EventQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig):
        super().__init__(scope, construct_id)
        policy = removal_policy(config)
        self.dead_letter_queue = self._dead_letter_queue(
            "DeadLetterQueue",
            policy,
            "This is the main queue's dead-letter queue (its redrive target); a DLQ of a DLQ would only move "
            "the same messages again.",
        )
        self.main_queue = sqs.Queue(
            self,
            "MainQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(visibility_timeout_seconds(config)),
            retention_period=Duration.days(C.MAIN_QUEUE_RETENTION_DAYS),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=config.retries.max_receive_count
            ),
            removal_policy=policy,
        )
        # Where EventBridge puts events it could not deliver (to the main queue, or to the error logger).
        self.rule_target_dead_letter_queue = self._dead_letter_queue(
            "RuleTargetDeadLetterQueue",
            policy,
            "This is the EventBridge rule targets' dead-letter queue (and the error logger's on-failure "
            "queue): the end of the line, read by operators, not consumed.",
        )

    def _dead_letter_queue(self, construct_id: str, policy: RemovalPolicy, why_no_dlq_of_its_own: str) -> sqs.Queue:
        """A dead-letter queue: encrypted, SSL only, kept 14 days; the end of a redrive chain, so no DLQ itself."""
        queue = sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(C.DLQ_RETENTION_DAYS),
            removal_policy=policy,
        )
        Validations.of(queue).acknowledge(Acknowledgment(id="AwsSolutions-SQS3", reason=why_no_dlq_of_its_own))
        return queue
