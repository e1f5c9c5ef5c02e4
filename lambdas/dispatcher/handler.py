"""Dispatcher Lambda: SQS batch of Genesys events -> one Step Functions execution per event.

Returns a partial batch response (the event source mapping needs
``ReportBatchItemFailures``); the logic is in genesys_pipeline.dispatch.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genesys_pipeline.budget import RequestBudget, budget_from_settings
from genesys_pipeline.dispatch import (
    Dispatcher,
    SqsDeadLetterSink,
    SqsDeferralSink,
    StepFunctionsExecutionStarter,
    sqs_client,
    stepfunctions_client,
)
from genesys_pipeline.observability import logger, metrics
from genesys_pipeline.settings import DispatcherSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


@cache
def dispatcher() -> Dispatcher:
    """Built once per container: settings parsed once, boto3 clients (and their connection pools) reused."""
    settings = DispatcherSettings.from_env()
    sqs = sqs_client(settings.start_concurrency)
    budget: RequestBudget | None = None
    deferrals: SqsDeferralSink | None = None
    if settings.budget is not None and settings.main_queue_url is not None:
        budget, deferrals = budget_from_settings(settings.budget), SqsDeferralSink(sqs, settings.main_queue_url)
    return Dispatcher(
        settings,
        StepFunctionsExecutionStarter(stepfunctions_client(settings.start_concurrency), settings.state_machine_arn),
        SqsDeadLetterSink(sqs, settings.dead_letter_queue_url),
        budget=budget,
        deferrals=deferrals,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return dispatcher().dispatch(event, context)
