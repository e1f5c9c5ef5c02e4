"""Dispatcher Lambda: SQS batch of Genesys events -> one Step Functions execution per event.

Returns a partial batch response (the event source mapping needs
``ReportBatchItemFailures``); the logic is in genesys_pipeline.dispatch.
"""
from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genesys_pipeline.budget import budget_from_settings
from genesys_pipeline.dispatch import (
    Dispatcher,
    SqsDeadLetterSink,
    SqsDeferralSink,
    StepFunctionsExecutionStarter,
    sqs_client,
    stepfunctions_client,
)
from genesys_pipeline.observability import logger, metrics, tracer
from genesys_pipeline.settings import DispatcherSettings


@cache
def dispatcher() -> Dispatcher:
    """Built once per container: settings parsed once, boto3 clients (and their connection pools) reused."""
    settings = DispatcherSettings.from_env()
    sqs = sqs_client(settings.start_concurrency)
    with_budget = settings.budget is not None and settings.main_queue_url is not None
    return Dispatcher(
        settings,
        StepFunctionsExecutionStarter(stepfunctions_client(settings.start_concurrency), settings.state_machine_arn),
        SqsDeadLetterSink(sqs, settings.dead_letter_queue_url),
        budget=budget_from_settings(settings.budget) if with_budget else None,
        deferrals=SqsDeferralSink(sqs, settings.main_queue_url) if with_budget else None,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dispatcher().dispatch(event, context)
