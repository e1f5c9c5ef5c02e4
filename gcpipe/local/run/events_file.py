"""``gcpipe local run --events FILE.jsonl``: the user's events, one EventBridge event per line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...envelopes import entry_problem, to_envelope
from ..ledger import TrackedEvent
from .errors import RunnerError


@dataclass
class InputProblem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def read_events_file(path: Path) -> tuple[list[TrackedEvent], list[InputProblem]]:
    """Envelopes or PutEvents entries, one per line. Bad lines are reported by number; the others run."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RunnerError(f"cannot read {path}: {exc.strerror or exc}") from None
    events: list[TrackedEvent] = []
    problems: list[InputProblem] = []
    for n, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            problems.append(InputProblem(n, f"not UTF-8 text (byte {exc.start})"))
            continue
        if not text or text.startswith("#"):
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            problems.append(
                InputProblem(n, f"not valid JSON ({getattr(exc, 'msg', exc)}); EventBridge only carries JSON events")
            )
            continue
        problem = entry_problem(obj)
        if problem:
            problems.append(InputProblem(n, problem))
            continue
        events.append(TrackedEvent(index=0, kind="file", envelope=to_envelope(obj), line=n))
    if not events and not problems:
        raise RunnerError(f"{path} has no events (one EventBridge event, as JSON, per line)")
    return events, problems


__all__ = ["InputProblem", "read_events_file"]
