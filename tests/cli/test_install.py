"""`pip install .` outside the checkout gives a working gcpipe: the CLI, genesys_pipeline, the AWS-side commands.

Offline and quick: the wheel is built without build isolation from a copy of the sources, installed with
--no-index --no-deps into a fresh venv; the declared dependencies are then satisfied by this venv's
(pinned) packages through a .pth line, the way --system-site-packages would, and checked against the
declared version ranges. Everything runs with the working directory outside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src / "pyproject.toml")
    shutil.copytree(ROOT / "gcpipe", src / "gcpipe", ignore=ignore)
    shutil.copytree(ROOT / "lambdas" / "genesys_pipeline", src / "lambdas" / "genesys_pipeline", ignore=ignore)
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        cwd=tmp,
    )
    assert built.returncode == 0, built.stderr
    target = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    [wheel] = (tmp / "dist").glob("gcpipe-*.whl")
    done = run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index", "--no-deps", str(wheel)],
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip()
    # The dependencies: this venv's pinned packages (its site-packages has no gcpipe: the checkout's install is an
    # editable finder, which a plain path line does not activate).
    Path(site, "deps-from-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return target


def test_gcpipe_help_works_from_the_installed_package(installed, tmp_path):
    result = run([str(installed / "bin" / "gcpipe"), "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("send", "failures", "redrive", "dlq", "archive", "genesys", "local"):
        assert command in result.stdout


def test_gcpipe_and_genesys_pipeline_come_from_the_install_not_the_checkout(installed, tmp_path):
    code = (
        "import gcpipe.cli, genesys_pipeline.events, genesys_pipeline.genesys; "
        "print(gcpipe.__file__); print(genesys_pipeline.__file__)"
    )
    result = run([str(installed / "bin" / "python"), "-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.split():
        assert Path(line).is_relative_to(installed) and not Path(line).is_relative_to(ROOT), line


def test_importing_gcpipe_changes_no_path_and_finds_the_domain_package_installed(tmp_path):
    # Given the checkout's venv (its editable install), outside the checkout and without PYTHONPATH
    code = (
        "import sys; before = list(sys.path)\n"
        "import gcpipe, gcpipe.cli, gcpipe.local.run, gcpipe.local.pipeline\n"
        "import genesys_pipeline.events\n"
        "import importlib.util\n"
        "assert sys.path == before, set(sys.path) ^ set(before)\n"
        "print(genesys_pipeline.__file__)\n"
        "print([m for m in ('dispatcher', 'processor', 'error_logger', 'extensions') if importlib.util.find_spec(m)])"
    )

    # When gcpipe and the domain package are imported
    result = run([sys.executable, "-c", code], cwd=tmp_path)

    # Then no path was inserted, genesys_pipeline is the installed mapping of lambdas/, and the handlers and
    # extensions are not importable (only a function's code directory holds them)
    assert result.returncode == 0, result.stderr
    module_file, handlers = result.stdout.splitlines()
    assert Path(module_file) == ROOT / "lambdas" / "genesys_pipeline" / "__init__.py"
    assert handlers == "[]"


def test_declared_dependencies_are_met_by_the_pinned_versions(installed, tmp_path):
    code = (
        "import json; from importlib.metadata import requires, version; from packaging.requirements import Requirement\n"
        "out = {}\n"
        "for r in map(Requirement, requires('gcpipe')):\n"
        "    if r.marker is None:\n"
        "        out[r.name] = [str(r.specifier), version(r.name), r.specifier.contains(version(r.name))]\n"
        "print(json.dumps(out))"
    )
    result = run([str(installed / "bin" / "python"), "-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    declared = json.loads(result.stdout)
    assert {"click", "rich", "boto3", "aws-lambda-powertools"} <= set(declared)
    assert all(ok for _, _, ok in declared.values()), declared
    pins = {
        _normal(name): pin
        for name, pin in (
            line.split("==", 1)
            for line in (ROOT / "constraints.txt").read_text().split()
            if "==" in line and not line.startswith("#")
        )
    }
    for name, (_, installed_version, _) in declared.items():
        assert pins[_normal(name)] == installed_version, name  # what was checked is what constraints.txt pins


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").split("[", 1)[0]


def test_the_package_list_covers_every_package(tmp_path):
    """pyproject lists packages explicitly (genesys_pipeline maps from lambdas/): a new subpackage must be added."""
    import tomllib

    from setuptools import find_packages

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {p for p in find_packages(str(ROOT), include=["gcpipe*"])}
    found |= {
        "genesys_pipeline." + p if p else "genesys_pipeline"
        for p in ["", *find_packages(str(ROOT / "lambdas" / "genesys_pipeline"))]
    }
    assert listed == found


def test_an_aws_side_command_runs_from_the_install(installed, tmp_path):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        clients = dict(
            region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        sqs = boto3.client("sqs", **clients)
        dlq = sqs.create_queue(QueueName="installed-dlq")["QueueUrl"]
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps({"detail": {"eventBody": {"conversationId": "c-1"}}}),
            MessageAttributes={"DeadLetterReason": {"DataType": "String", "StringValue": "missing detail.version"}},
        )
        boto3.client("cloudformation", **clients).create_stack(
            StackName="GenesysEvents-dev",
            TemplateBody=json.dumps(
                {
                    "Resources": {"M": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "m"}}},
                    "Outputs": {"DeadLetterQueueUrl": {"Value": dlq}},
                }
            ),
        )

        result = run(
            [
                str(installed / "bin" / "gcpipe"),
                "--local",
                "--endpoint-url",
                endpoint,
                "--env",
                "dev",
                "dlq",
                "show",
                "--json",
            ],
            cwd=tmp_path,
        )

        assert result.returncode == 0, result.stderr
        [row] = json.loads(result.stdout)
        assert row["reason"] == "missing detail.version" and row["conversation_id"] == "c-1"
    finally:
        server.stop()


def test_shell_completion_script_is_generated(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["_GCPIPE_COMPLETE"] = "bash_source"
    result = subprocess.run(
        [str(installed / "bin" / "gcpipe")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "_gcpipe_completion" in result.stdout
