"""The local run's one user-facing error."""

from __future__ import annotations


class RunnerError(Exception):
    """A problem that stops the run before traffic (bad file, failed synth): one line for the user."""


__all__ = ["RunnerError"]
