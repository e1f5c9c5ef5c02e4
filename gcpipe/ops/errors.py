"""Errors an operator command reports as one line (exit 1), never as a traceback."""

from __future__ import annotations


class OperatorError(Exception):
    """Something the operator can act on: a missing stack output, a refused call, a conflict."""


class TargetError(OperatorError):
    """The environment (deployed stack or local stack) could not be resolved."""


class NotSupportedOnTarget(OperatorError):
    """The command exists but this target cannot do it (e.g. archive replay locally).

    The CLI turns this into a usage error (exit 2): the combination of command
    and target is what is wrong, not the environment's state.
    """
