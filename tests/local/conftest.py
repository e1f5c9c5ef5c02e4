"""Fixtures for the local runtime's tests: moto in-process with every adapter applied.

Each adapter test drives moto's real behaviour through the adapter, so a moto
upgrade that moves a seam fails here first.
"""

from __future__ import annotations

import io
import textwrap
import uuid
import zipfile
from typing import Any, Callable

import boto3
import pytest
from moto import mock_aws

from gcpipe.local import MOTO_CONFIG, install_adapters, remove_adapters
from gcpipe.local.lambda_runtime import RUNTIME
from gcpipe.local.stepfunctions import RETRY_CLOCK, STATUS_EVENTS

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/local"


@pytest.fixture
def aws() -> Any:
    """moto with the adapters; yields a boto3 session bound to it."""
    with mock_aws(config=MOTO_CONFIG):
        install_adapters()
        RUNTIME.reset()
        RETRY_CLOCK.scale = 0.0
        RETRY_CLOCK.requested.clear()
        RETRY_CLOCK.slept.clear()
        STATUS_EVENTS.enabled = True
        STATUS_EVENTS.emitted.clear()
        try:
            yield boto3.Session(region_name=REGION)
        finally:
            RUNTIME.reset()  # every worker ends with its emulator
            remove_adapters()


@pytest.fixture
def make_function(aws) -> Callable[..., str]:
    """Create a Lambda function from Python source; returns its ARN.

    Each function runs in its own worker processes (lambda_runtime), from its zip's files.
    """
    lam = aws.client("lambda")
    aws.client("iam").create_role(
        RoleName="local",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    )

    def make(
        source: str,
        *,
        env: dict[str, str] | None = None,
        name: str | None = None,
        timeout: int = 30,
        extra_files: dict[str, str] | None = None,
    ) -> str:
        module = f"fn_{uuid.uuid4().hex[:10]}"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"{module}.py", textwrap.dedent(source))
            for path, text in (extra_files or {}).items():
                zf.writestr(path, textwrap.dedent(text))
        resp = lam.create_function(
            FunctionName=name or module,
            Runtime="python3.11",
            Role=ROLE_ARN,
            Handler=f"{module}.handler",
            Code={"ZipFile": buf.getvalue()},
            Environment={"Variables": env or {}},
            Timeout=timeout,
            MemorySize=256,
        )
        return resp["FunctionArn"]

    return make
