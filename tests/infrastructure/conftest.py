"""Unit-level synth of every shipped environment, once per session.

Built-in CloudFormation validation off (it costs seconds per synth; `python -m infra.synth_all` keeps it),
bundling skipped (`aws:cdk:bundling-stacks: []`): the asset is the lambdas/ source as is.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra import constants as C
from infra.config import EnvironmentConfig, load
from infra.stack import GenesysEventsStack

ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
ENVIRONMENTS = sorted(CDK_CONTEXT[C.CONTEXT_ENVIRONMENTS])


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups into the node ids
def pytest_collection_modifyitems(items):
    # One xdist worker builds the session's stacks once (make test runs -n 2 --dist loadgroup).
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.xdist_group("infrastructure"))


def context_with(env: str, **overrides: Any) -> dict[str, Any]:
    """cdk.json's context with environment ``env`` changed by ``overrides`` (top-level keys of that env)."""
    context = copy.deepcopy(CDK_CONTEXT)
    context[C.CONTEXT_ENVIRONMENTS][env].update(overrides)
    return context


def synth(env: str, context: dict[str, Any] | None = None) -> tuple[GenesysEventsStack, Template]:
    app = cdk.App(
        context={**(context or CDK_CONTEXT), "env": env, "aws:cdk:bundling-stacks": []},
        builtin_cloud_formation_validation=False,
    )
    stack = GenesysEventsStack(app, config=load(app.node.try_get_context))
    return stack, Template.from_stack(stack)


class Synthesized:
    def __init__(self, env: str, context: dict[str, Any] | None = None):
        self.stack, self.template = synth(env, context)
        self.config: EnvironmentConfig = self.stack.config
        self.json: dict[str, Any] = self.template.to_json()

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == rtype}

    def one(self, rtype: str, path_part: str = "") -> tuple[str, dict[str, Any]]:
        found = [(k, v) for k, v in self.resources(rtype).items() if path_part in k]
        assert len(found) == 1, f"expected one {rtype} matching {path_part!r}, got {[k for k, _ in found]}"
        return found[0]

    def function(self, name: str) -> dict[str, Any]:
        """'Dispatcher' | 'Processor' | 'ErrorLogger' -> its AWS::Lambda::Function properties."""
        return self.one("AWS::Lambda::Function", f"{name}Function")[1]["Properties"]

    def policy_statements(self, role_part: str) -> list[dict[str, Any]]:
        statements = []
        for _, res in self.resources("AWS::IAM::Policy").items():
            if any(role_part in r["Ref"] for r in res["Properties"]["Roles"]):
                statements.extend(res["Properties"]["PolicyDocument"]["Statement"])
        return statements


_CACHE: dict[str, Synthesized] = {}


def synthesized(env: str) -> Synthesized:
    if env not in _CACHE:
        _CACHE[env] = Synthesized(env)
    return _CACHE[env]


@pytest.fixture(scope="session")
def dev() -> Synthesized:
    return synthesized("dev")


@pytest.fixture(scope="session")
def prod() -> Synthesized:
    return synthesized("prod")


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def shipped(request) -> Synthesized:
    """Each shipped environment in turn."""
    return synthesized(request.param)
