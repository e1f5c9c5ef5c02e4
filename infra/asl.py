"""Rendering of the ASL files in statemachines/ (no CDK import: check_static uses it too).

Numbers (retry budgets, the task timeout) are rendered from the environment's config; ARN
placeholders stay for CloudFormation's DefinitionSubstitutions.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import constants as C
from .config import EnvironmentConfig, RetryBudget

STATEMACHINES_DIR = Path(__file__).resolve().parents[1] / "statemachines"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# Substituted by CloudFormation (DefinitionSubstitutions), not by render_definition.
ARN_PLACEHOLDERS = ("ProcessorFunctionArn",)


def _budget(prefix: str, budget: RetryBudget) -> dict[str, str]:
    rate = budget.backoff_rate
    return {
        f"{prefix}IntervalSeconds": str(budget.interval_seconds),
        f"{prefix}MaxAttempts": str(budget.max_attempts),
        f"{prefix}BackoffRate": str(int(rate)) if rate == int(rate) else str(rate),
        f"{prefix}MaxDelaySeconds": str(budget.max_delay_seconds),
    }


def definition_values(config: EnvironmentConfig) -> dict[str, str]:
    return {
        "ProcessTimeoutSeconds": str(C.PROCESSOR_TIMEOUT_SECONDS + C.PROCESS_TASK_TIMEOUT_MARGIN_SECONDS),
        **_budget("RateLimited", config.retries.rate_limited),
        **_budget("Unavailable", config.retries.unavailable),
        **_budget("AwsDependency", config.retries.aws_dependency),
        **_budget("InProgress", config.retries.in_progress),
        **_budget("LambdaService", config.retries.lambda_service),
    }


def render_definition(text: str, config: EnvironmentConfig, *, arns: dict[str, str] | None = None) -> str:
    """Fill the config placeholders; ARN placeholders are left for CloudFormation unless ``arns`` gives them.
    An unknown placeholder is an error (a typo in the ASL must not reach a deploy)."""
    values = {**definition_values(config), **(arns or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        if name in ARN_PLACEHOLDERS:
            return match.group(0)
        raise ValueError(
            f"statemachines: unknown placeholder ${{{name}}}; known: {', '.join(sorted([*values, *ARN_PLACEHOLDERS]))}"
        )

    return PLACEHOLDER.sub(replace, text)
