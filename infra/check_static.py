"""Offline static checks, run by `make check-static` after `python -m infra.synth_all`.

1. asl-validator (pinned in package.json) on every file in statemachines/; a file with ${...}
   placeholders is first rendered with each environment's values (ARNs with a sample ARN) so that it is
   valid JSON.
2. cfn-lint -i W3005 on every synthesized cdk.out/*.template.json.

Exits non-zero with a message naming the file (and environment) on any failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from . import constants as C
from .config import load
from .asl import ARN_PLACEHOLDERS, PLACEHOLDER, render_definition

ROOT = Path(__file__).resolve().parents[1]
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
STATEMACHINES = ROOT / "statemachines"
CDK_OUT = ROOT / "cdk.out"
SAMPLE_ARNS = {name: f"arn:aws:lambda:us-east-1:123456789012:function:sample-{name}" for name in ARN_PLACEHOLDERS}


def _context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def rendered_definitions() -> list[tuple[str, str]]:
    """(label, JSON text) for every ASL file, once per environment when it has placeholders."""
    context = _context()
    out = []
    for path in sorted(STATEMACHINES.glob("*.json")):
        text = path.read_text()
        if not PLACEHOLDER.search(text):
            out.append((path.name, text))
            continue
        for env in sorted(context[C.CONTEXT_ENVIRONMENTS]):
            config = load(context.get, env)
            out.append((f"{path.name} ({env})", render_definition(text, config, arns=SAMPLE_ARNS)))
    return out


def check_asl() -> list[str]:
    problems = []
    if not ASL_VALIDATOR.exists():
        return [f"{ASL_VALIDATOR.relative_to(ROOT)} is missing: run `npm ci`"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, text) in enumerate(rendered_definitions()):
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"asl: {label}: not valid JSON after rendering: {exc}")
                continue
            file = Path(tmp) / f"{i}.asl.json"
            file.write_text(text)
            done = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(file)], capture_output=True, text=True)
            if done.returncode != 0:
                problems.append(f"asl: {label}: asl-validator failed:\n{(done.stdout + done.stderr).strip()}")
            else:
                print(f"check_static: asl-validator ok: {label}")
    return problems


def check_templates() -> list[str]:
    templates = sorted(CDK_OUT.glob("*.template.json"))
    if not templates:
        return [f"cfn-lint: no {CDK_OUT.name}/*.template.json: run `python -m infra.synth_all` first"]
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    cmd = [str(cfn_lint) if cfn_lint.exists() else "cfn-lint", "-i", "W3005", "--", *map(str, templates)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return [f"cfn-lint failed on {', '.join(t.name for t in templates)}:\n{(done.stdout + done.stderr).strip()}"]
    print(f"check_static: cfn-lint ok: {', '.join(t.name for t in templates)}")
    return []


def main() -> int:
    problems = check_asl() + check_templates()
    for problem in problems:
        print(f"check_static: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
