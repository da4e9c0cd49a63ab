"""Batch file operations on a selection: plan → run → resume → undo, journaled in the store.

``copy``, ``move``, ``rename``, ``delete`` and ``convert`` work on the files of a
selection (:mod:`tuiops.ops.select`) and on their label files: carried from disk
(``STEM.txt`` / ``STEM.xml`` beside the image, or in the sibling ``labels/`` folder of an
``images/`` folder, with the folder's ``classes.txt``), or written from a label set of
the store (YOLO txt with the workspace's ``classes.txt``, Pascal VOC XML).

Plan
    Every op first writes its plan into the store as a job: one ``job_actions`` row per
    file action (``mkdir``, ``copy``, ``move``, ``convert``, ``write``, ``paint``), with
    the source, the target and, for an overwrite or an in-place conversion, where the
    old file is kept. Conflicts are found while planning and follow the policy: ``fail`` (default: nothing is touched), ``skip``, ``rename`` (``NAME_1.ext``,
    the image and its label files together) or ``overwrite`` (the old file goes to the
    workspace trash, so undo restores it). Conflicts a new name cannot solve (source
    missing, read-only folder, symlink out of the pool, name too long) are skipped under
    every policy but ``fail``. A dry run stops after the plan (run it later with
    ``resume``).

Run
    Actions run one image with its label files at a time: on a small thread pool for a
    small job, and from ``PROCESS_MIN`` actions on, on worker processes (one per core, at
    most ``workers``), so the system calls of several files run in
    parallel instead of taking turns on the interpreter lock. The workers die with the
    process that runs the job (``PR_SET_PDEATHSIG``), and their ids are recorded on the
    job so that a resume after a kill waits until none is left. A new file (copy,
    convert, label written) is written unnamed in its target folder (``O_TMPFILE``) and
    linked to its name when complete, so it appears whole or not at all and never
    replaces a file that is there (file systems without ``O_TMPFILE`` get the temporary
    name ``.tuiops-JOB-SEQ.part`` and a no-replace rename). A copy is made by the kernel
    (``copy_file_range``: the data never passes through this process, and file systems
    that share extents, such as XFS and Btrfs, make a clone). A move within a file system
    is one rename; a move across file systems is copy → fsync → verify (size and
    SHA-256) → rename → delete. The journal is write-ahead: before a window of actions
    touches a file, the job's mark (``job_marks``) moves past it in one store update, and
    the outcomes are committed in batches: the size of every file, the SHA-256 of every
    file written from memory (labels, conversions, drawings) and, for a copy, the placed
    file's identity (inode, size, modification and change time), with the store's
    ``files`` records following moved files in the same transaction. After a kill at any
    moment, ``resume`` decides every action at or below the mark that the journal does
    not know as done from the file system (source and target present? target content the
    expected SHA-256? temporary file left?) and finishes the job: nothing lost, nothing
    done twice.

Durability
    The journal stays consistent through any crash (SQLite WAL). After the process is
    killed (``kill -9``, out of memory, Ctrl+C) resume is exact: the kernel keeps every
    byte written. By default file data is not synced: after a power loss or an OS crash a
    file the journal records as done may lack data that had not reached the disk. With
    ``durable`` (``--durable``) every file is synced before it gets its name, its folder
    after, and every journal commit is synced, so resume is exact after a power loss too
    (at the cost of an fsync per file).

Undo
    ``undo`` walks the done actions backwards: copies are removed (only when unchanged
    since), moves go back, overwritten files come back from the trash, created folders
    are removed when empty, and the store's records follow. Undo is journaled the same
    way, so it survives a kill too.

Setting ``TUIOPS_FAULT=POINT:N`` kills the process (SIGKILL) the N-th time it reaches
POINT (``plan``, ``action``, ``placed``, ``flush``, ``undo``): a testing hook for crash recovery. A
worker process counts its own actions, and kills the job's process with itself.
"""

from tuiops.ops.fileops.acts import tmp_path
from tuiops.ops.fileops.inspect import forget_job, list_jobs, purge_job, show_job
from tuiops.ops.fileops.jobs import run_job, undo_job
from tuiops.ops.fileops.model import PROCESS_MIN, WORKERS, ConvertOptions, PlanResult, RunResult
from tuiops.ops.fileops.operations import (
    convert_files,
    convert_in_place,
    copy_files,
    delete_files,
    move_files,
    rename_files,
    run_op,
)
from tuiops.ops.fileops.planning import plan
from tuiops.ops.select import select_files

__all__ = [
    "PROCESS_MIN",
    "WORKERS",
    "ConvertOptions",
    "PlanResult",
    "RunResult",
    "convert_files",
    "convert_in_place",
    "copy_files",
    "delete_files",
    "forget_job",
    "list_jobs",
    "move_files",
    "plan",
    "purge_job",
    "rename_files",
    "run_job",
    "run_op",
    "select_files",
    "show_job",
    "tmp_path",
    "undo_job",
]
