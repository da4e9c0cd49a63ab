"""`tuiops dataset`, `tuiops train` (with pitstops, resume, status, watch, report) and `tuiops detect`."""

from __future__ import annotations

import click

from tuiops.cli import TuiopsGroup, cli
from tuiops.cli.build import add


# -- dataset -----------------------------------------------------------------------------------------
@cli.group("dataset", cls=TuiopsGroup)
def dataset_group() -> None:
    """Build ultralytics datasets from label sets, with a split that stays put."""


add(dataset_group, "dataset build")
add(dataset_group, "dataset list")


# -- train -------------------------------------------------------------------------------------------
class TrainGroup(TuiopsGroup):
    """`tuiops train DATA …` starts a run; `tuiops train resume|status|watch|report RUN` act on one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@cli.group("train", cls=TrainGroup)
def train_group() -> None:
    """Train YOLO with pitstops, resume after fixing labels, and follow a run.

    `tuiops train DATA …` is `tuiops train start DATA …`.

    \b
    The improvement cycle:
      tuiops dataset build --set GT --to datasets/gt
      tuiops train datasets/gt --model yolov8n.yaml --epochs 100 --pitstops 0.4,0.7 --name v1
      tuiops train status v1          # read the pitstop report, fix labels in the store
      tuiops train resume v1 --exclude @training/v1/tuiops/pitstop-1-worst-train.txt
      tuiops detect --weights training/v1/weights/best.pt --run v1-pool
    """


for _name in ("start", "resume", "status", "watch", "report"):
    add(train_group, ("train", _name))


# -- detect ------------------------------------------------------------------------------------------
add(cli, "detect")
