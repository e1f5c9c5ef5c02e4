"""``gcpipe local run`` runs every function instance in its own worker process, and Ctrl-C leaves none behind."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from .kept_stack import GCPIPE, PROJECT_ROOT, environment, wait_for

pytestmark = pytest.mark.e2e


def worker_pids(parent: int) -> set[int]:
    """Live worker processes (``python -m gcpipe.local.worker``) whose parent is ``parent``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z" and b"gcpipe.local.worker" in cmdline:
            found.add(int(entry.name))
    return found


def workers_in(code_root: Path) -> set[int]:
    """Live worker processes, whoever their parent now is, whose working directory (the function's code) is
    under ``code_root``."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and b"gcpipe.local.worker" in (entry / "cmdline").read_bytes()
                and Path(os.readlink(entry / "cwd")).is_relative_to(code_root)
                and alive(int(entry.name))
            ):
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_during_a_run_stops_every_worker_and_leaves_no_orphan(synthesized, tmp_path):
    # Given a run whose functions are up in their worker processes
    with open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen(
            [GCPIPE, "local", "run", "--cdk-out", str(synthesized), "--count", "60", "--no-faults", "--json"],
            cwd=PROJECT_ROOT,
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        try:
            seen = wait_for(
                lambda: len(worker_pids(proc.pid)) >= 2 and worker_pids(proc.pid), 300, "two worker processes"
            )

            # When the operator presses Ctrl-C (the terminal signals the foreground process group: gcpipe's)
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    # Then no worker outlives it (they are in their own sessions: the runtime ended them)
    assert wait_for(lambda: not any(alive(p) for p in seen), 10, "the workers to end")
    assert not workers_in(Path(synthesized).resolve())
