"""The Genesys partner event bus, its archive, and the rule that routes this org's events to the main queue."""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from . import constants as C
from .config import EnvironmentConfig, rule_event_pattern
from .function import removal_policy


class Ingestion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        main_queue: sqs.IQueue,
        target_dead_letter_queue: sqs.IQueue,
    ):
        super().__init__(scope, construct_id)
        if config.event_bus_mode == "create":
            # A partner bus is created from the partner event source, with the same name
            # (AWS::Events::EventBus EventSourceName = Name; reference/genesys.md).
            self.bus: events.IEventBus = events.EventBus(self, "PartnerBus", event_source_name=config.event_bus_name)
        else:
            self.bus = events.EventBus.from_event_bus_name(self, "PartnerBus", config.event_bus_name)

        self.archive = events.Archive(
            self,
            "Archive",
            source_event_bus=self.bus,
            archive_name=f"{config.stack_name}-{C.ARCHIVE_SUFFIX}",
            description=f"Every event of Genesys org {config.genesys_org_id}, for replay",
            event_pattern=events.EventPattern(source=events.Match.prefix(config.source_prefix)),
            retention=Duration.days(config.archive_retention_days) if config.archive_retention_days else None,
        )
        self.archive.apply_removal_policy(removal_policy(config))

        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=self.bus,
            description="Configured Genesys topics (and queues) to the main queue",
            # Placeholder: the full pattern (with $or, which the L2 EventPattern cannot express) is set below.
            event_pattern=events.EventPattern(source=events.Match.prefix(config.source_prefix)),
            targets=[
                targets.SqsQueue(
                    main_queue,
                    dead_letter_queue=target_dead_letter_queue,
                    max_event_age=Duration.seconds(config.rule_target.maximum_event_age_seconds),
                    retry_attempts=config.rule_target.maximum_retry_attempts,
                )
            ],
        )
        self.event_pattern = rule_event_pattern(config)
        cast(events.CfnRule, self.rule.node.default_child).add_property_override("EventPattern", self.event_pattern)
