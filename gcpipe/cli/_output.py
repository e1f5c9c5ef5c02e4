"""Rendering and argument types shared by the commands: rich tables, JSON, time options."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text


def stdout() -> Console:
    # Built per call so that click's CliRunner (which swaps sys.stdout) captures it.
    return Console(file=sys.stdout, soft_wrap=False, width=200 if not sys.stdout.isatty() else None)


def stderr() -> Console:
    return Console(file=sys.stderr, width=120 if not sys.stderr.isatty() else None)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, show_lines=False, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    return t


class ThroughputColumn(ProgressColumn):
    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} ev/s" if speed else "- ev/s", style="progress.data.speed")


def progress(console: Console | None = None, *, disable: bool = False) -> Progress:
    console = console or stderr()
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        ThroughputColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=disable or not console.is_terminal,
        transient=False,
    )


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class DurationTooLarge(ValueError):
    """A duration no date can be that far back from now (timedelta's and datetime's limits)."""


def parse_duration(value: str) -> timedelta | None:
    """``90m``, ``24h``, ``7d`` ... as a timedelta; None when ``value`` is not a duration.
    Raises DurationTooLarge when it is one but cannot be represented."""
    m = _DURATION.match(value.strip().lower())
    if not m:
        return None
    try:
        return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    except OverflowError:
        raise DurationTooLarge(value) from None


class PointInTime(click.ParamType):
    """An ISO 8601 time (UTC if no offset), ``now``, or a duration ago such as ``24h``, ``90m``, ``7d``."""

    name = "TIME"

    def convert(self, value: Any, param: Any, ctx: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        now = datetime.now(timezone.utc)
        if text.lower() == "now":
            return now
        too_large = (
            f"{text!r} is too far back: a duration ago must stay after year 1 "
            f"(at most {(now - datetime.min.replace(tzinfo=timezone.utc)).days:,}d)"
        )
        try:
            ago = parse_duration(text)
            if ago is not None:
                return now - ago
        except (DurationTooLarge, OverflowError):
            self.fail(too_large, param, ctx)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(
                f"{text!r} is not a time: use ISO 8601 (2026-11-23T12:00:00Z), 'now', or a duration ago (24h, 90m, 7d)",
                param,
                ctx,
            )
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


POINT_IN_TIME = PointInTime()
