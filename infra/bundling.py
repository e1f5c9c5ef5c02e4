"""The Lambda code asset: lambdas/ plus its pinned requirements, bundled at synth time without Docker.

``PipLocalBundling`` is a jsii ``ILocalBundling``: CDK calls ``try_bundle`` before it would start
Docker, and a ``True`` there means Docker is never touched (the DockerImage is a placeholder).
It copies lambdas/ (minus tests and caches) and pip-installs lambdas/requirements.txt as manylinux
wheels for the Lambda's Python version and architecture. Tests skip bundling with the context
``{"aws:cdk:bundling-stacks": []}``, then the asset is the source directory as is.
"""
from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from . import constants as C

BUNDLER_REVISION = "1"  # bump when try_bundle changes what it produces
LAMBDAS_DIR = Path(__file__).resolve().parents[1] / "lambdas"


class BundlingError(RuntimeError):
    pass


def _ignore(excludes: list[str]):
    def ignore(directory: str, names: list[str]) -> set[str]:
        rel_dir = Path(directory).resolve().relative_to(LAMBDAS_DIR.resolve()) if directory else Path()
        skipped = set()
        for name in names:
            rel = (rel_dir / name).as_posix()
            if any(fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(name, pattern) for pattern in excludes):
                skipped.add(name)
        return skipped
    return ignore


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    def __init__(self, source: Path, architecture: str, python_version: str = C.PYTHON_VERSION,
                 excludes: list[str] | None = None):
        self.source = source
        self.platform = C.PIP_PLATFORMS[architecture]
        self.python_version = python_version
        self.excludes = list(excludes or C.ASSET_EXCLUDES)

    def try_bundle(self, output_dir: str, *_options: Any, **_kw: Any) -> bool:  # jsii passes BundlingOptions
        out = Path(output_dir)
        shutil.copytree(self.source, out, ignore=_ignore(self.excludes), dirs_exist_ok=True)
        requirements = self.source / "requirements.txt"
        if requirements.exists():
            cmd = [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                "-r", str(requirements), "--target", str(out),
                "--platform", self.platform, "--implementation", "cp", "--python-version", self.python_version,
                "--only-binary=:all:", "--upgrade",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                # A failed bundle must fail synth, not fall back to Docker.
                raise BundlingError(f"pip install for the Lambda asset failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
            (out / "requirements.txt").unlink(missing_ok=True)
            # The Lambda Python runtime ships boto3/botocore (lambdas/requirements.txt relies on it); aws-xray-sdk
            # pulls botocore in anyway, and it is ~30 MB of the asset.
            for pattern in C.RUNTIME_PROVIDED_PACKAGES:
                for path in out.glob(pattern):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        return True


def lambda_code(architecture: str) -> lambda_.Code:
    """One code asset for every function (handler paths are unique across lambdas/)."""
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        exclude=C.ASSET_EXCLUDES,
        # The source (incl. the pinned requirements.txt) + bundling options determine the asset: the hash is
        # stable across synths, where an output hash would change with every pip run's metadata.
        asset_hash_type=AssetHashType.SOURCE,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("none"),  # placeholder, never pulled: local bundling always wins
            local=PipLocalBundling(LAMBDAS_DIR, architecture),
            command=["false"],
            # Part of the asset hash (with the source): a change to how the asset is built changes the asset.
            environment={"PIP_PLATFORM": C.PIP_PLATFORMS[architecture], "PYTHON_VERSION": C.PYTHON_VERSION,
                         "BUNDLER_REVISION": BUNDLER_REVISION,
                         "REMOVED": ",".join(C.RUNTIME_PROVIDED_PACKAGES)},
        ),
    )
