"""One snapshot per shipped environment: any infrastructure change shows up here, a handler edit does not.

Asset hashes (S3Key, asset paths, any 64-hex string) are masked. Update deliberately with
`pytest tests/infrastructure/test_snapshot.py --snapshot-update` and review the diff.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from .conftest import ENVIRONMENTS, synthesized

HASH = re.compile(r"[0-9a-f]{64}")


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return HASH.sub("<asset-hash>", value)
    return value


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_template_snapshot(env, snapshot_json):
    assert masked(synthesized(env).json) == snapshot_json
