#!/usr/bin/env python3
"""CDK app: one stack per environment, picked with `-c env=<name>` (default dev) from cdk.json."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from infra.compliance import NAG_FAILED, add_compliance_checks
from infra.config import ConfigError, load
from infra.stack import GenesysEventsStack


def main() -> None:
    app = cdk.App()
    if str(app.node.try_get_context("bundling")).lower() == "false":
        # `-c bundling=false`: the asset is lambdas/ as is. The CLI refuses user context keys prefixed with
        # "aws:", so `-c aws:cdk:bundling-stacks=[]` cannot be passed from the command line; set it here,
        # before any construct exists.
        app.node.set_context("aws:cdk:bundling-stacks", [])
    try:
        config = load(app.node.try_get_context)
    except ConfigError as exc:
        # One line naming the key and what is allowed; no traceback.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    GenesysEventsStack(app, config=config)
    add_compliance_checks(app)
    try:
        app.synth()
    except RuntimeError as exc:
        if NAG_FAILED not in str(exc):
            raise
        # The findings (rule, construct path, how to acknowledge) are printed above by CDK.
        print(
            "error: cdk-nag AwsSolutions findings above: fix each, or acknowledge it in code with "
            "Validations.of(construct).acknowledge(Acknowledgment(id=..., reason=...))",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
