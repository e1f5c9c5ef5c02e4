"""Shared fixtures. Sample events are copies of the Genesys reference samples."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

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
