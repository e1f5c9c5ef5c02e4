"""The Lambda code asset is reproducible: installed from a hashed lock, byte-identical across builds, hashed from its inputs.

The real bundling test needs PyPI (pip downloads the locked wheels; the pip cache makes a second run quick).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from infra import constants as C
from infra.bundling import (
    LAMBDAS_DIR,
    NORMALISED_MTIME,
    REQUIREMENTS_LOCK,
    PipLocalBundling,
    asset_fingerprint,
    source_files,
)

ROOT = Path(__file__).resolve().parents[2]
ASSET_BUDGET_BYTES = int(4.5 * 2**20)  # issue 12: the asset stays <= 4.5 MiB unzipped


def _pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line (comments, hashes and includes skipped)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[name.split("[")[0].strip().lower().replace("_", "-")] = version.split()[0]
    return pins


def _tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """relative path -> (mode, mtime, sha256) for every file and directory."""
    out = {}
    for p in sorted(root.rglob("*")):
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        st = p.lstat()
        out[p.relative_to(root).as_posix()] = (st.st_mode, int(st.st_mtime), digest)
    return out


def test_the_tests_run_on_the_functions_python():
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == C.PYTHON_VERSION


def test_the_lock_pins_every_requirement_with_hashes_and_agrees_with_constraints():
    lock_text = (LAMBDAS_DIR / REQUIREMENTS_LOCK).read_text()
    lock = _pins(lock_text)
    wanted = _pins((LAMBDAS_DIR / "requirements.txt").read_text())
    assert wanted and all(lock.get(name) == version for name, version in wanted.items()), (wanted, lock)
    # every pinned package carries at least one hash (pip --require-hashes refuses anything else)
    blocks = [b for b in lock_text.split("\n") if "==" in b]
    assert len(blocks) == len(lock) and lock_text.count("--hash=sha256:") >= len(lock)
    # the venv the tests run in has the versions the asset ships
    constraints = _pins((ROOT / "constraints.txt").read_text())
    assert {n: constraints.get(n) for n in lock} == lock
    assert "aws-xray-sdk" not in lock and "requests" not in lock


def test_the_asset_hash_changes_with_any_pin_or_source_file_and_only_then(tmp_path):
    source = tmp_path / "lambdas"
    shutil.copytree(LAMBDAS_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    before = asset_fingerprint(source, "arm64")
    assert asset_fingerprint(source, "arm64") == before
    (source / "dispatcher" / "__pycache__").mkdir()
    (source / "dispatcher" / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"cache")
    assert asset_fingerprint(source, "arm64") == before  # caches are not part of the asset
    lock = source / REQUIREMENTS_LOCK
    original = lock.read_text()
    lock.write_text(original.replace("jmespath==1.1.0", "jmespath==1.0.1"))
    assert asset_fingerprint(source, "arm64") != before
    lock.write_text(original)
    assert asset_fingerprint(source, "arm64") == before
    (source / "genesys_pipeline" / "errors.py").write_text(
        (source / "genesys_pipeline" / "errors.py").read_text() + "\n"
    )
    assert asset_fingerprint(source, "arm64") != before
    assert asset_fingerprint(LAMBDAS_DIR, "arm64") != asset_fingerprint(LAMBDAS_DIR, "x86_64")


def _s3_key(source: Path) -> str:
    """The S3 key CDK gives the code asset of ``source`` (bundling skipped, as in every synth test)."""
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk.assertions import Template

    from infra.bundling import lambda_code

    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "AssetHash")
    lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="dispatcher.handler.lambda_handler",
        code=lambda_code("arm64", source),
    )
    (fn,) = Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()
    return fn["Properties"]["Code"]["S3Key"]


def test_a_changed_pin_gives_the_template_a_new_asset(tmp_path):
    source = tmp_path / "lambdas"
    shutil.copytree(LAMBDAS_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    before = _s3_key(source)
    lock = source / REQUIREMENTS_LOCK
    original = lock.read_text()
    lock.write_text(original.replace("typing-extensions==4.16.0", "typing-extensions==4.15.0"))
    assert _s3_key(source) != before
    lock.write_text(original)
    assert _s3_key(source) == before


def test_bundling_twice_gives_byte_identical_assets_without_the_xray_sdk(tmp_path):
    bundler = PipLocalBundling(LAMBDAS_DIR, "arm64")
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        out.mkdir()
        assert bundler.try_bundle(str(out)) is True
    tree = _tree(first)
    assert tree == _tree(second)
    assert {mtime for _, mtime, _ in tree.values()} == {NORMALISED_MTIME}
    names = {Path(p).parts[0] for p in tree}
    assert {"aws_lambda_powertools", "jmespath", "genesys_pipeline", "dispatcher", "processor", "error_logger"} <= names
    assert not {"aws_xray_sdk", "requests", "boto3", "botocore", "wrapt"} & names
    assert not [p for p in tree if "__pycache__" in p or p.endswith((".pyc", "/RECORD"))]
    assert not {REQUIREMENTS_LOCK, "requirements.txt"} & names
    for rel in source_files(LAMBDAS_DIR):  # every source file is in the asset, byte for byte
        if rel.name not in (REQUIREMENTS_LOCK, "requirements.txt"):
            assert tree[rel.as_posix()][2] == hashlib.sha256((LAMBDAS_DIR / rel).read_bytes()).hexdigest(), rel
    assert sum((first / p).stat().st_size for p, (_, _, d) in tree.items() if d != "dir") <= ASSET_BUDGET_BYTES


def test_a_missing_lock_fails_the_bundle_with_the_fix(tmp_path):
    source = tmp_path / "lambdas"
    shutil.copytree(LAMBDAS_DIR / "dispatcher", source / "dispatcher")
    with pytest.raises(Exception, match="infra.lock"):
        PipLocalBundling(source, "arm64").try_bundle(str(tmp_path / "out"))
