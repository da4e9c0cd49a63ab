"""Write the command reference (docs/commands.md) from the commands' own help text.

Run ``python -m tuiops.cli.docgen > docs/commands.md`` after changing a command; a test
fails when the file is out of date.
"""

from __future__ import annotations

import click

from tuiops.cli import cli


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=path[-1], **cli.context_settings)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out.extend(_walk(sub, [*path, name]))
    return out


def all_commands() -> list[tuple[list[str], click.Command]]:
    """Every command and sub-command as (path, command), the root first."""
    return _walk(cli, ["tuiops"])


def render() -> str:
    lines = [
        "# Command reference",
        "",
        "Generated from the commands' help by `python -m tuiops.cli.docgen`.",
        "",
    ]
    for path, cmd in all_commands():
        name = " ".join(path)
        lines.append(f"{'#' * min(len(path) + 1, 4)} `{name}`")
        lines.append("")
        ctx = click.Context(cli, info_name="tuiops", terminal_width=100, **cli.context_settings)
        for part in path[1:]:
            group = ctx.command
            sub = group.get_command(ctx, part) if isinstance(group, click.Group) else None
            if sub is None:
                raise LookupError(f"no command {name!r}")
            ctx = click.Context(sub, info_name=part, parent=ctx, terminal_width=100, **cli.context_settings)
        lines.append("```")
        lines.append(cmd.get_help(ctx).rstrip())
        lines.append("```")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    click.echo(render(), nl=False)
