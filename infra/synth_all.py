"""Full `cdk synth` of every shipped environment, as CI and `make synth` run it.

Through the pinned CLI (node_modules/.bin/cdk), offline, with the built-in CloudFormation validation
on and real (Docker-free) bundling, into cdk.out/ (one <stack>.template.json per environment).
Exits non-zero, naming the environment, when any synth fails.

    python -m infra.synth_all [env ...]     # default: every environment in cdk.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import constants as C

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
OUT = ROOT / "cdk.out"


def environments() -> list[str]:
    return sorted(json.loads((ROOT / "cdk.json").read_text())["context"][C.CONTEXT_ENVIRONMENTS])


def synth(env: str, *, out: Path = OUT, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    environ = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_CLI_TELEMETRY="true")
    environ.pop("CDK_VALIDATION", None)  # the full synth keeps the built-in validation on
    # The app runs under this interpreter's environment (cdk.json falls back to python3 on PATH).
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    cmd = [str(CDK), "synth", "--no-notices", "-q", "-c", f"env={env}", "-o", str(out), *(extra or [])]
    return subprocess.run(cmd, cwd=ROOT, env=environ, capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    if not CDK.exists():
        print(
            f"synth_all: {CDK.relative_to(ROOT)} is missing: run `npm ci` (the CDK CLI is pinned in package.json)",
            file=sys.stderr,
        )
        return 1
    names = (argv if argv is not None else sys.argv[1:]) or environments()
    failed = []
    for env in names:
        started = time.monotonic()
        done = synth(env)
        took = time.monotonic() - started
        template = OUT / f"{C.STACK_PREFIX}{env}.template.json"
        if done.returncode != 0 or not template.exists():
            failed.append(env)
            print(f"synth_all: {env}: FAILED ({took:.1f}s)\n{done.stderr.strip()[-4000:]}", file=sys.stderr)
        else:
            print(f"synth_all: {env}: {template.relative_to(ROOT)} ({took:.1f}s)")
    if failed:
        print(f"synth_all: failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
