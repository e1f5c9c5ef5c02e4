"""Processor Lambda: the Step Functions Process task. Writes one event back to Genesys, exactly once.

Errors are raised by name (genesys_pipeline.errors); the state machine retries
GenesysRateLimited, GenesysUnavailable and AwsDependencyUnavailable (and Powertools' in-progress error) and
fails at once on the others.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genesys_pipeline.budget import BudgetGate, budget_from_settings
from genesys_pipeline.genesys import GenesysClient
from genesys_pipeline.observability import logger, metrics
from genesys_pipeline.processing import Processor
from genesys_pipeline.settings import ProcessorSettings


@cache
def processor() -> Processor:
    """Built once per container: settings, templates (checked here), the HTTP pool and the token cache live on."""
    settings = ProcessorSettings.from_env()
    budget = budget_from_settings(settings.budget) if settings.budget else None
    gate = (
        BudgetGate(budget, max_inline_wait_seconds=settings.genesys.max_inline_retry_after_seconds) if budget else None
    )
    return Processor(settings, GenesysClient(settings.genesys, gate=gate), budget=budget)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("event") if isinstance(event, dict) else None
    if isinstance(body, dict):
        logger.append_keys(dedup_key=body.get("dedupKey"), conversation_id=body.get("conversationId"))
    return processor().process(event, context)
