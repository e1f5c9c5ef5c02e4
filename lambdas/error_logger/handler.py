"""Error-logger Lambda: on a FAILED/TIMED_OUT/ABORTED execution, one failure record, and a best-effort mark in Genesys.

Triggered by the EventBridge rule on "Step Functions Execution Status Change"
(default bus), not by a Catch, so that redrive still resumes at the Process state.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from genesys_pipeline.budget import BudgetGate, TokenBucketBudget, budget_from_settings
from genesys_pipeline.failures import handle_status_change
from genesys_pipeline.genesys import GenesysClient
from genesys_pipeline.observability import logger, metrics
from genesys_pipeline.settings import ErrorLoggerSettings


@cache
def runtime() -> tuple[ErrorLoggerSettings, Any, GenesysClient | None, TokenBucketBudget | None]:
    settings = ErrorLoggerSettings.from_env()
    budget = budget_from_settings(settings.budget) if settings.budget else None
    genesys = None
    if settings.genesys is not None:
        gate = (
            BudgetGate(budget, max_inline_wait_seconds=settings.genesys.max_inline_retry_after_seconds)
            if budget
            else None
        )
        genesys = GenesysClient(settings.genesys, gate=gate)
    return settings, boto3.client("stepfunctions"), genesys, budget


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings, sfn, genesys, budget = runtime()
    detail = event.get("detail") if isinstance(event, dict) else None
    if isinstance(detail, dict):
        logger.append_keys(execution_arn=detail.get("executionArn"), dedup_key=detail.get("name"))
    return handle_status_change(event, sfn=sfn, genesys=genesys, settings=settings, budget=budget)
