"""The local AWS runtime: the pipeline on moto (5.2.5, pinned) with no AWS and no Docker.

moto emulates EventBridge, SQS, Step Functions (a real ASL interpreter),
DynamoDB and Secrets Manager. Where it falls short of what the pipeline needs,
one small adapter in this package closes the gap, each documented with the
gap it closes and covered by a test in tests/local/ that runs moto's real
behaviour through it. Every patch of moto is applied from one list,
``moto_patches.PATCHES``, each entry with the moto behaviour it corrects:

- lambda_runtime: invoke runs the real handler in the function's own worker
  process, with AWS's limits (moto only echoes).
- eventbridge: partner bus names, full envelopes, partner events routing,
  Lambda targets, TestEventPattern.
- sqs_poller: Lambda's SQS event source mapping (batches, partial batch
  failures, visibility, DLQ redrive, concurrency); StartMessageMoveTask.
- stepfunctions: skippable Retry sleeps, status-change events, local replay
  in place of RedriveExecution.
- dynamodb: conditional writes atomic, as DynamoDB's are (moto checks the
  condition and updates without a lock).
- deploy / pipeline: the stack from the synthesized CloudFormation template,
  as ``LocalPipeline``.
"""

from __future__ import annotations

from typing import Any

# moto configuration every local run needs: Lambdas without Docker (lambda_runtime's workers) and
# Step Functions that really execute.
MOTO_CONFIG: dict[str, Any] = {
    "lambda": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
}


def install_adapters() -> None:
    """Apply every moto patch (``moto_patches.PATCHES``; idempotent)."""
    from . import moto_patches

    moto_patches.install()


def remove_adapters() -> None:
    """Put moto back exactly as it was."""
    from . import moto_patches

    moto_patches.remove()


def __getattr__(name: str) -> Any:  # lazy: importing the package must not import moto
    if name in ("LocalPipeline",):
        from .pipeline import LocalPipeline

        return LocalPipeline
    raise AttributeError(name)
