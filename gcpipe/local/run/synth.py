"""The cloud assembly a local run deploys: ``GenesysEvents-<env>`` synthesized with asset bundling skipped,
into ``.local-run/cdk.out``, again only when a source of the stack is newer than the template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from ... import PROJECT_ROOT
from ...names import stack_name
from ..run_files import RUN_DIR_NAME
from .errors import RunnerError

# What the synthesized stack is made of: a newer file here makes the template stale.
SYNTH_SOURCES = ("app.py", "cdk.json", "infra", "statemachines", "lambdas")


def template_path(cdk_out: Path, env: str) -> Path:
    return Path(cdk_out) / f"{stack_name(env)}.template.json"


def _newest_source_mtime(root: Path = PROJECT_ROOT) -> float:
    newest = 0.0
    for name in SYNTH_SOURCES:
        path = root / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for f in path.rglob("*"):
                if f.is_file() and "__pycache__" not in f.parts and not f.name.endswith(".pyc"):
                    newest = max(newest, f.stat().st_mtime)
    return newest


def synth_is_fresh(cdk_out: Path, env: str, root: Path = PROJECT_ROOT) -> bool:
    template = template_path(cdk_out, env)
    return template.is_file() and template.stat().st_mtime >= _newest_source_mtime(root)


def synthesize(
    env: str, out: Path, root: Path = PROJECT_ROOT, *, environment_overrides: dict[str, Any] | None = None
) -> None:
    """Synthesize ``GenesysEvents-<env>`` into ``out`` with asset bundling skipped.

    The CDK app is run the way the CDK CLI runs it (cdk.json's ``context`` and the
    output directory passed through ``CDK_CONTEXT_JSON`` / ``CDK_OUTDIR``), because the
    CLI refuses user context keys starting with ``aws:`` and
    ``{"aws:cdk:bundling-stacks": []}`` is how a CDK app is told not to bundle. The
    function asset is then ``lambdas/`` as is: the local Lambdas' worker processes import it with
    this venv's packages (a bundled asset holds wheels for Lambda's Python and
    architecture, arm64 here, which this machine may not load).
    """
    try:
        context = json.loads((root / "cdk.json").read_text()).get("context", {})
    except (OSError, ValueError) as exc:
        raise RunnerError(f"cannot read cdk.json: {exc}") from None
    if environment_overrides:  # keys of context.environments.<env> replaced for this synth (the benchmarks' designs)
        context.setdefault("environments", {}).setdefault(env, {}).update(environment_overrides)
    context.update({"env": env, "aws:cdk:bundling-stacks": []})
    python = root / ".venv" / "bin" / "python"
    env_vars = dict(
        os.environ,
        CDK_OUTDIR=str(out),
        CDK_CONTEXT_JSON=json.dumps(context),
        CDK_VALIDATION="false",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_CLI_TELEMETRY="true",
    )
    Path(out).mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(python if python.exists() else sys.executable), "app.py"],
        cwd=root,
        env=env_vars,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not template_path(out, env).is_file():
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-15:]
        raise RunnerError(f"synth of {stack_name(env)} failed:\n" + "\n".join(tail))


def ensure_synthesized(
    env: str, cdk_out: Path | None = None, *, say: Callable[[str], None] = lambda _: None, root: Path = PROJECT_ROOT
) -> Path:
    """The cloud assembly to deploy: ``cdk_out`` as given, or ``.local-run/cdk.out`` synthesized when stale."""
    if cdk_out is not None:
        if not template_path(cdk_out, env).is_file():
            raise RunnerError(
                f"{template_path(cdk_out, env)} not found: synthesize {stack_name(env)} into {cdk_out} first"
            )
        return Path(cdk_out)
    out = root / RUN_DIR_NAME / "cdk.out"
    if synth_is_fresh(out, env, root):
        say(f"using {out} (up to date)")
        return out
    if not (root / "cdk.json").exists() or not (root / "app.py").exists():
        raise RunnerError("the CDK app (cdk.json, app.py) is not there yet: nothing to deploy")
    say(f"synthesizing {stack_name(env)} into {out} (bundling skipped: the local Lambdas run lambdas/ in place)")
    synthesize(env, out, root)
    return out


__all__ = ["SYNTH_SOURCES", "ensure_synthesized", "synth_is_fresh", "synthesize", "template_path"]
