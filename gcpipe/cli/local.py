"""``gcpipe local ...``: the local stack (moto + Genesys simulator).

The subcommands live in their own modules and are discovered here: any module
``gcpipe/cli/local_<name>.py`` that defines a click command named
``command`` is added to this group. So ``gcpipe local run`` is one small
module, e.g. ``gcpipe/cli/local_run.py``::

    import click
    from gcpipe.ops.target import LocalState

    @click.command("run")
    @click.option("--env", default="dev")
    def command(env):
        \"\"\"Run the whole pipeline locally.\"\"\"
        from gcpipe.local.run import ...   # build LocalPipeline, start moto server + simulator
        # Write the state file so that `gcpipe --local <command>` finds this stack:
        LocalState(aws_endpoint=..., genesys_base_url=..., env=env).write(Path(".local-run/endpoints.json"))

Modules are imported only when the group is used (``gcpipe local ...``), so a
heavy runner import never slows down the other commands.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import click

_PREFIX = "local_"


class LocalGroup(click.Group):
    def _discover(self) -> None:
        if getattr(self, "_discovered", False):
            return
        self._discovered = True
        package = importlib.import_module(__package__)
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith(_PREFIX):
                module = importlib.import_module(f"{__package__}.{info.name}")
                command = getattr(module, "command", None)
                if isinstance(command, click.Command):
                    self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._discover()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> Any:
        self._discover()
        return super().get_command(ctx, name)


@click.group(cls=LocalGroup)
def local() -> None:
    """Run and manage the local stack (moto + Genesys simulator). Other commands reach it with `gcpipe --local ...`."""
