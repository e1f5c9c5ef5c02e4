"""--since / --from / --to: a duration too large to represent is a usage error (one line, exit 2)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gcpipe.cli import cli


@pytest.mark.parametrize(
    "args",
    [
        ["failures", "--since", "99999999d"],
        ["redrive", "--all-failed", "--since", "99999999d"],
        ["redrive", "--all-failed", "--since", "999999999999999999999999w"],
        ["archive", "replay", "--from", "99999999d"],
        ["archive", "replay", "--from", "1h", "--to", "99999999d"],
    ],
)
def test_a_duration_beyond_what_a_date_can_hold_is_a_one_line_usage_error(args):
    # When an operator asks for a time too far back (no AWS is reached: parsing comes first)
    result = CliRunner().invoke(cli, ["--env", "prod", *args])

    # Then click reports it as a usage error, naming the value, without a traceback
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "too far back" in result.output
    assert "Traceback" not in result.output
    error_lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(error_lines) == 1


def test_a_large_but_representable_duration_is_still_accepted():
    from datetime import datetime, timedelta, timezone

    from gcpipe.cli._output import POINT_IN_TIME

    assert POINT_IN_TIME.convert("36500d", None, None) <= datetime.now(timezone.utc) - timedelta(days=36500)
