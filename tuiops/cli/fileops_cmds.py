"""`tuiops select`, `tuiops ops …` (batch file operations), `tuiops review …` and `tuiops paint`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add

# -- select --------------------------------------------------------------------------------------
add(cli, "select")


# -- ops -------------------------------------------------------------------------------------------
@cli.group("ops")
def ops_group() -> None:
    """Batch file operations on a selection: copy, move, rename, delete, convert — journaled.

    Every operation first writes its plan into the store as a job (one row per file
    action) and checks it for conflicts; --dry-run stops there. Actions write to a
    temporary name and rename; a move across file systems is copy, verify, delete. A
    killed job is finished by `tuiops ops resume JOB`; `tuiops ops undo JOB` reverses a
    finished or partial job exactly. Label files go along: carried from disk (STEM.txt,
    STEM.xml beside the image, or labels/ beside images/), or written from --set.
    """


for _name in (
    "copy",
    "move",
    "rename",
    "delete",
    "convert",
    "resume",
    "undo",
    "list",
    "show",
    "purge",
    "forget",
):
    add(ops_group, ("ops", _name))


# -- review ----------------------------------------------------------------------------------------
@cli.group("review")
def review_group() -> None:
    """Review subsets for labelImg: export the worst cases of a match, import the edits back."""


for _name in ("export", "import", "open"):
    add(review_group, ("review", _name))


# -- paint -------------------------------------------------------------------------------------------
add(cli, "paint")
