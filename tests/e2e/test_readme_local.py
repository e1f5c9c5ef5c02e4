"""The README's "Locally" section, followed verbatim (issue 14, defect 2): `make up` in one terminal,
the `gcpipe --local ...` commands in another, then Ctrl-C in the first."""

from __future__ import annotations

import re

import pytest

from .kept_stack import PROJECT_ROOT, STATE_FILE, STEP_TIMEOUT, KeptStack, environment, flat, wait_for

pytestmark = pytest.mark.e2e


def readme_local_blocks() -> list[list[str]]:
    """The indented code blocks of README.md's "### Locally" section, as lists of command lines."""
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("\n### Locally\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in section.splitlines():
        if line.startswith("    ") and line.strip():
            current.append(line.strip())
        elif current and line.strip() != "":
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def test_the_readme_local_sequence_works_verbatim(tmp_path):
    import subprocess

    [up], commands = readme_local_blocks()[:2]
    assert up.startswith("make up") and commands and all(c.startswith(".venv/bin/gcpipe --local ") for c in commands)

    # Terminal 1: `make up`, as written
    stack = KeptStack(up, tmp_path / "terminal-1")
    try:
        stack.start()
        # Terminal 2: each command as written, from the project directory
        for command in commands:
            done = subprocess.run(
                command,
                shell=True,
                executable="/bin/bash",
                cwd=PROJECT_ROOT,
                env=environment(),
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT,
            )
            assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            if "genesys writes" in command:
                assert re.search(r"\d+ write\(s\) to \d+ place\(s\)", done.stdout), done.stdout[-2000:]
        # Then Ctrl-C in terminal 1: it drains and stops, and the state file goes with it
        stack.ctrl_c()
        stack.wait()
        err = flat(stack.stderr())
        assert "drained: the" in err or "stopping: nothing queued or running" in err, err[-2000:]
        wait_for(lambda: not STATE_FILE.exists(), STEP_TIMEOUT, "the state file to be removed")
    finally:
        stack.close()
