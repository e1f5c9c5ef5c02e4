"""Shared fixtures. Sample events are copies of the Genesys reference samples."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis' per-example deadline (200 ms) is a timing assertion: on two shared cores an example can take
# 400 ms and the property test fails although the property holds. No deadline; examples stay bounded.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_EVENTS = {p.stem: json.loads(p.read_text()) for p in sorted((FIXTURES / "events").glob("*.json"))}


@pytest.fixture
def sample_events() -> dict[str, dict]:
    """name -> a fresh deep copy of each sample EventBridge envelope (acd-end, customer-end, attributes)."""
    return copy.deepcopy(SAMPLE_EVENTS)


@pytest.fixture(autouse=True)
def _aws_test_env(monkeypatch):
    # Never reach a real AWS account from a test, whatever the machine has configured.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "GenesysEventPipeline")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Path:
    """cdk.out of the dev environment, bundling skipped (the asset is lambdas/ as is), once per session.

    GCPIPE_TEST_CDK_OUT reuses an assembly synthesized elsewhere. The app is run the
    way the CDK CLI runs it: the CLI refuses user context keys starting with "aws:",
    such as aws:cdk:bundling-stacks (gcpipe.local.run.synth.synthesize).
    """
    if os.environ.get("GCPIPE_TEST_CDK_OUT"):
        return Path(os.environ["GCPIPE_TEST_CDK_OUT"])
    from gcpipe.local.run import RunnerError
    from gcpipe.local.run.synth import synthesize

    out = tmp_path_factory.mktemp("cdk.out")
    try:
        synthesize("dev", out)
    except RunnerError as exc:
        pytest.fail(str(exc))
    return out
