"""Names the CDK app, the operator CLI and the local runtime share: one definition each."""

from __future__ import annotations

STACK_PREFIX = "GenesysEvents-"  # one stack per environment: GenesysEvents-<env>


def stack_name(env: str) -> str:
    return f"{STACK_PREFIX}{env}"


__all__ = ["STACK_PREFIX", "stack_name"]
