"""Mixing the builds of dataset projects into one VOC, YOLO or COCO dataset, and pushing it (:mod:`tuiops.ops.projects`)."""

from tuiops.ops.projects.classmap import ClassMap, MapRule, build_class_map, parse_map
from tuiops.ops.projects.mix import mix_projects
from tuiops.ops.projects.mixmodel import (
    DUPES,
    FORMATS,
    MANIFEST,
    MIX_KIND,
    SPLITS,
    VOC_YEARS,
    YOLO_EXTS,
    MixResult,
    ProjectBuild,
    PushResult,
)
from tuiops.ops.projects.mixout import verify_output
from tuiops.ops.projects.model import BUILD_JSON, projects_dir
from tuiops.ops.projects.push import push_tarball
from tuiops.ops.projects.sources import load_build
from tuiops.ops.projects.split import dupes_and_split, split_draws, split_table, split_target
from tuiops.ops.projects.tarball import write_tarball

__all__ = [
    "BUILD_JSON",
    "DUPES",
    "FORMATS",
    "MANIFEST",
    "MIX_KIND",
    "SPLITS",
    "VOC_YEARS",
    "YOLO_EXTS",
    "ClassMap",
    "MapRule",
    "MixResult",
    "ProjectBuild",
    "PushResult",
    "build_class_map",
    "dupes_and_split",
    "load_build",
    "mix_projects",
    "parse_map",
    "projects_dir",
    "push_tarball",
    "split_draws",
    "split_table",
    "split_target",
    "verify_output",
    "write_tarball",
]
