#!/usr/bin/env python3
"""CDK app: one stack per environment, picked with `-c env=<name>` (default dev) from cdk.json."""
from __future__ import annotations

import sys

import aws_cdk as cdk

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
    app.synth()


if __name__ == "__main__":
    main()
