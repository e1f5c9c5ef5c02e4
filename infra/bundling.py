"""The Lambda code asset: lambdas/ plus its locked requirements, bundled at synth time without Docker.

``PipLocalBundling`` is a jsii ``ILocalBundling``: CDK calls ``try_bundle`` before it would start
Docker, and a ``True`` there means Docker is never touched (the DockerImage is a placeholder).
It copies lambdas/ (minus tests and caches) and pip-installs ``lambdas/requirements.lock`` (every
package, transitive ones included, pinned with its sha256: ``--require-hashes``) as wheels for the
Lambda's Python version and architecture. Tests skip bundling with the context
``{"aws:cdk:bundling-stacks": []}``, then the asset is the source directory as is.

Reproducible to the byte: the same lock and source give the same files, bytes, modes and mtimes
(no ``__pycache__``, no pip ``RECORD``, every mtime set to ``NORMALISED_MTIME``), and the asset hash
is computed from exactly those inputs (``asset_fingerprint``), so one hash never stands for two
different bundles and any pin or source change gives a new hash.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from . import constants as C

BUNDLER_REVISION = "2"  # bump when try_bundle changes what it produces (part of the asset hash)
LAMBDAS_DIR = Path(__file__).resolve().parents[1] / "lambdas"
REQUIREMENTS_LOCK = "requirements.lock"  # generated from requirements.txt by `python -m infra.lock`
REQUIREMENTS_FILES = ("requirements.txt", REQUIREMENTS_LOCK)  # inputs of the bundle, not part of it
NORMALISED_MTIME = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can carry
# Written by pip at install time, and not needed to import anything: RECORD lists install-time paths.
INSTALL_ARTEFACTS = ("RECORD", "direct_url.json")


class BundlingError(RuntimeError):
    pass


def _ignore(source: Path, excludes: list[str]) -> Callable[[str, list[str]], set[str]]:
    root = source.resolve()

    def ignore(directory: str, names: list[str]) -> set[str]:
        rel_dir = Path(directory).resolve().relative_to(root) if directory else Path()
        skipped = set()
        for name in names:
            rel = (rel_dir / name).as_posix()
            if any(fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(name, pattern) for pattern in excludes):
                skipped.add(name)
        return skipped

    return ignore


def source_files(source: Path, excludes: list[str] | None = None) -> list[Path]:
    """The files of ``source`` that go into the asset (and its hash), sorted, relative to ``source``."""
    ignore = _ignore(source, list(excludes or C.ASSET_EXCLUDES))
    found: list[Path] = []
    for directory, dirs, files in os.walk(source):
        skipped = ignore(directory, dirs + files)
        dirs[:] = sorted(d for d in dirs if d not in skipped)
        found += [Path(directory, f).relative_to(source) for f in files if f not in skipped]
    return sorted(found, key=lambda p: p.as_posix())


def asset_fingerprint(source: Path, architecture: str, python_version: str = C.PYTHON_VERSION) -> str:
    """sha256 of everything that decides the bundle: how it is built, the lock, every source file."""
    digest = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    feed("bundler", BUNDLER_REVISION.encode())
    feed("platform", C.PIP_PLATFORMS[architecture].encode())
    feed("python", python_version.encode())
    feed("removed", ",".join(C.RUNTIME_PROVIDED_PACKAGES).encode())
    lock = source / REQUIREMENTS_LOCK
    feed("lock", lock.read_bytes() if lock.exists() else b"")  # also among the files below: said twice on purpose
    for rel in source_files(source):
        feed(f"file:{rel.as_posix()}", (source / rel).read_bytes())
    return digest.hexdigest()


def normalise(root: Path) -> None:
    """Make a bundle's tree a function of its contents only: no caches, no install records, fixed modes and mtimes."""
    for path in sorted(root.rglob("*"), reverse=True):  # children before their directory
        if path.is_symlink():
            continue
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)
        elif path.is_file() and (
            path.suffix == ".pyc" or (path.parent.name.endswith(".dist-info") and path.name in INSTALL_ARTEFACTS)
        ):
            path.unlink()
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (NORMALISED_MTIME, NORMALISED_MTIME))


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    def __init__(
        self, source: Path, architecture: str, python_version: str = C.PYTHON_VERSION, excludes: list[str] | None = None
    ):
        self.source = source
        self.platform = C.PIP_PLATFORMS[architecture]
        self.python_version = python_version
        self.excludes = list(excludes or C.ASSET_EXCLUDES)

    def pip_command(self, target: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--require-hashes",
            "-r",
            str(self.source / REQUIREMENTS_LOCK),
            "--target",
            str(target),
            "--platform",
            self.platform,
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
            "--upgrade",
        ]

    def try_bundle(self, output_dir: str, *_options: Any, **_kw: Any) -> bool:  # jsii passes BundlingOptions
        out = Path(output_dir)
        if not (self.source / REQUIREMENTS_LOCK).exists():
            raise BundlingError(f"{self.source / REQUIREMENTS_LOCK} is missing: run `python -m infra.lock`")
        shutil.copytree(self.source, out, ignore=_ignore(self.source, self.excludes), dirs_exist_ok=True)
        cmd = self.pip_command(out)
        # pip's own configuration (index mirror, certificates) still applies: the hashes decide the bytes.
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            # A failed bundle must fail synth, not fall back to Docker.
            raise BundlingError(f"pip install for the Lambda asset failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
        for name in REQUIREMENTS_FILES:
            (out / name).unlink(missing_ok=True)
        # The Lambda Python runtime ships boto3/botocore; none is in the lock, but never ship a second copy.
        for pattern in C.RUNTIME_PROVIDED_PACKAGES:
            for path in out.glob(pattern):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        normalise(out)
        return True


def lambda_code(architecture: str, source: Path = LAMBDAS_DIR) -> lambda_.Code:
    """One code asset for every function (handler paths are unique across lambdas/)."""
    return lambda_.Code.from_asset(
        str(source),
        exclude=C.ASSET_EXCLUDES,
        # Our own hash of the lock + source + build settings: stable across synths (an output hash would
        # depend on the machine's pip), and it changes with any pin, any source file, any build setting.
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_fingerprint(source, architecture),
        bundling=BundlingOptions(
            image=DockerImage.from_registry("none"),  # placeholder, never pulled: local bundling always wins
            local=PipLocalBundling(source, architecture),
            command=["false"],
        ),
    )
