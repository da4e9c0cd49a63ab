"""The one action table: every key of the app, its id, its description and its group.

The main screen's bindings, the F-key bar at the bottom, the F9 menu and the F1 help
screen are all generated from :data:`ACTIONS`, so they cannot disagree. Keys follow FAR
Manager (and Midnight Commander) where those have one: no plain letter is a command on
the panels (letters typed there go to the command line, Alt+letter is the quick search),
and each F-key action has an alternative for terminals where F-keys are taken: a Ctrl
combination, or a word typed alone on the command line (``view``, ``copy``, ``q`` …).
User keymaps (``[tui.keymap]`` in tuiops.toml) replace an action's keys by its id.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Action:
    """One user action: ``id`` is the binding id and the Textual action name."""

    id: str
    keys: tuple[str, ...]
    label: str
    description: str
    group: str
    fkey: int | None = None
    #: Where the binding lives: "main" (the panels screen), "table" (the focused panel's
    #: table: shown in help, bound by the widget), "jobs" (the jobs pane), "output" (a job's
    #: output), "viewer" (the F3 image viewer), "triage" (the triage screen), "gallery" (the
    #: thumbnails, Shift+F3).
    scope: str = "main"
    #: Shown in the F9 menu.
    menu: bool = True
    #: Handled before the focused widget (keys an Input would otherwise swallow).
    priority: bool = False
    #: Words that run the action when typed alone on the main screen's command line.
    command: tuple[str, ...] = ()

    @property
    def action(self) -> str:
        return self.id.replace("-", "_")


ACTIONS: tuple[Action, ...] = (
    # -- files ---------------------------------------------------------------------------
    Action("help", ("f1",), "Help", "Keys, commands and filter fields", "App", 1, command=("help",)),
    Action(
        "view",
        ("f3",),
        "View",
        "View the image under the cursor with its boxes",
        "Files",
        3,
        command=("view",),
    ),
    Action(
        "edit",
        ("f4",),
        "Edit",
        "Open the image in the configured label editor",
        "Files",
        4,
        command=("edit",),
    ),
    Action(
        "copy",
        ("f5",),
        "Copy",
        "Copy the selection and its label files to the other panel's folder (planned, journaled)",
        "Files",
        5,
        command=("copy",),
    ),
    Action(
        "move",
        ("f6",),
        "RenMov",
        "Move the selection and its label files to the other panel's folder (planned, journaled)",
        "Files",
        6,
        command=("move",),
    ),
    Action("mkdir", ("f7",), "MkFold", "Make a folder in the pool folder", "Files", 7, command=("mkdir",)),
    Action(
        "delete",
        ("f8", "delete"),
        "Delete",
        "Move the selection to the workspace trash (planned, journaled)",
        "Files",
        8,
        command=("delete",),
    ),
    Action("menu", ("f9", "ctrl+p"), "Menu", "Menu of every action", "App", 9, command=("menu",)),
    Action(
        "quit",
        ("f10",),
        "Quit",
        "Quit tuiops (asks first while jobs run)",
        "App",
        10,
        command=("q", "quit", "exit"),
    ),
    Action(
        "save-script",
        ("ctrl+s",),
        "Script",
        "Save this session's commands and file operations as a `tuiops run` script",
        "App",
        command=("save",),
    ),
    # -- selection -----------------------------------------------------------------------
    Action(
        "toggle-select", ("insert", "space"), "Select", "Select or deselect the row and go down", "Selection"
    ),
    Action(
        "select-mask",
        ("plus", "equals_sign"),
        "Select+",
        "Select rows whose name matches a mask (*.png)",
        "Selection",
    ),
    Action("deselect-mask", ("minus",), "Select−", "Deselect rows whose name matches a mask", "Selection"),
    Action(
        "invert-selection", ("asterisk",), "Invert", "Invert the selection of the rows shown", "Selection"
    ),
    Action("select-all", ("ctrl+a",), "All", "Select every row shown", "Selection"),
    Action("clear-selection", ("ctrl+d",), "None", "Deselect everything", "Selection"),
    # -- panels --------------------------------------------------------------------------
    Action("switch-panel", ("tab",), "Switch", "Switch to the other panel", "Panels", priority=True),
    Action(
        "open", ("enter",), "Open", "Open the folder, table or image under the cursor", "Panels", menu=False
    ),
    Action("parent", ("backspace", "ctrl+pageup"), "Up", "Go to the parent folder", "Panels"),
    Action(
        "quick-view",
        ("ctrl+q",),
        "Quick",
        "Quick view: the other panel shows the image under the cursor",
        "Panels",
        priority=True,
    ),
    Action(
        "sync-panels",
        ("ctrl+k",),
        "Sync",
        "Keep the other panel on the boxes of the image under the cursor",
        "Panels",
        command=("sync",),
    ),
    Action("reread", ("ctrl+r",), "Reread", "Re-read the panel from the store", "Panels"),
    Action("swap-panels", ("ctrl+u",), "Swap", "Swap the two panels", "Panels"),
    Action(
        "catalog-left", ("alt+f1", "alt+1"), "Left", "Show the workspace catalog in the left panel", "Panels"
    ),
    Action(
        "catalog-right",
        ("alt+f2", "alt+2"),
        "Right",
        "Show the workspace catalog in the right panel",
        "Panels",
    ),
    Action(
        "jobs",
        ("f12",),
        "Jobs",
        "Show or hide the jobs pane (progress, ETA, cancel, errors)",
        "Panels",
        12,
        command=("jobs",),
    ),
    Action(
        "output",
        ("ctrl+o",),
        "Output",
        "The output of the last command of the app (or of the job picked in the jobs pane), live",
        "Panels",
        command=("output",),
    ),
    Action(
        "triage",
        ("f2", "ctrl+t"),
        "Triage",
        "Triage the label set against the run: one key to accept, delete, re-class, mark bad",
        "Panels",
        2,
        command=("triage",),
    ),
    Action(
        "report",
        ("f11", "ctrl+e"),
        "Report",
        "Charts of the label set against the run: AP per class, PR curves, confusion, histograms",
        "Panels",
        11,
        command=("report",),
    ),
    Action(
        "monitor",
        ("ctrl+w",),
        "Monitor",
        "Watch a training run live: epochs, losses, mAP, P/R charts, pitstops, best epoch, ETA",
        "Training",
        command=("monitor",),
    ),
    Action(
        "gallery",
        ("shift+f3",),
        "Gallery",
        "Thumbnails of the panel's images with their boxes: select many, mark bad, review, copy",
        "Panels",
    ),
    Action(
        "projects",
        ("ctrl+b",),
        "Projects",
        "Dataset projects, hosts and mixes: build here or on a host, mix, push",
        "Training",
        command=("projects",),
    ),
    # -- sorting and filtering -----------------------------------------------------------
    Action("sort-name", ("ctrl+f3",), "Name", "Sort by name (again: reverse)", "Sort and filter"),
    Action("sort-ext", ("ctrl+f4",), "Ext", "Sort by extension", "Sort and filter"),
    Action("sort-time", ("ctrl+f5",), "Time", "Sort by modification time", "Sort and filter"),
    Action("sort-size", ("ctrl+f6",), "Size", "Sort by size", "Sort and filter"),
    Action("sort-unsorted", ("ctrl+f7",), "Unsort", "Back to the store's order", "Sort and filter"),
    Action(
        "sort-menu",
        ("ctrl+f12",),
        "Order",
        "Sort by any column (labels, detections, F1 …)",
        "Sort and filter",
        command=("sort",),
    ),
    Action(
        "filter",
        ("slash", "ctrl+f"),
        "Filter",
        "Filter the panel with a SQL WHERE over its fields",
        "Sort and filter",
    ),
    Action(
        "clear-filter",
        ("escape",),
        "Clear",
        "Clear the filter (or leave the command line)",
        "Sort and filter",
        menu=False,
    ),
    Action(
        "command-line",
        ("colon", "ctrl+g"),
        "Command",
        "Command line: a filter, a query, cd, or any tuiops command",
        "Sort and filter",
    ),
    # -- inside a panel's table (bound by the table widget) --------------------------------
    Action("cursor-up", ("up",), "Up", "Previous row", "Moving", scope="table", menu=False),
    Action("cursor-down", ("down",), "Down", "Next row", "Moving", scope="table", menu=False),
    Action("page-up", ("pageup",), "PgUp", "Page up", "Moving", scope="table", menu=False),
    Action("page-down", ("pagedown",), "PgDn", "Page down", "Moving", scope="table", menu=False),
    Action("first-row", ("home",), "Home", "First row", "Moving", scope="table", menu=False),
    Action("last-row", ("end",), "End", "Last row", "Moving", scope="table", menu=False),
    # -- the jobs pane (F12) ------------------------------------------------------------
    Action("jobs-up", ("up",), "Up", "Previous job", "Jobs pane", scope="jobs", menu=False),
    Action("jobs-down", ("down",), "Down", "Next job", "Jobs pane", scope="jobs", menu=False),
    Action(
        "jobs-cancel",
        ("x", "delete"),
        "Cancel",
        "Cancel the job (it journals what it did and stops)",
        "Jobs pane",
        scope="jobs",
        menu=False,
    ),
    Action(
        "jobs-output",
        ("o",),
        "Output",
        "The job's output (stdout and stderr), live as it runs",
        "Jobs pane",
        scope="jobs",
        menu=False,
    ),
    Action(
        "jobs-details",
        ("enter",),
        "Details",
        "The job's errors and output",
        "Jobs pane",
        scope="jobs",
        menu=False,
    ),
    # -- the output screen (Ctrl+O, o in the jobs pane) ---------------------------------
    Action(
        "output-close",
        ("escape", "ctrl+o", "q"),
        "Close",
        "Back to the panels",
        "Output",
        scope="output",
        menu=False,
    ),
    Action(
        "output-cancel",
        ("x",),
        "Cancel",
        "Cancel the command (it journals what it did and stops)",
        "Output",
        scope="output",
        menu=False,
    ),
    # -- the image viewer (F3) -----------------------------------------------------------
    Action(
        "viewer-close",
        ("escape", "f3", "f10", "q"),
        "Close",
        "Back to the panels",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    Action(
        "viewer-next",
        ("pagedown", "space", "right"),
        "Next",
        "Next image of the panel",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    Action(
        "viewer-prev",
        ("pageup", "left"),
        "Prev",
        "Previous image of the panel",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    Action(
        "viewer-labels", ("l",), "Labels", "Show or hide label boxes", "Viewer", scope="viewer", menu=False
    ),
    Action(
        "viewer-dets", ("d",), "Dets", "Show or hide detection boxes", "Viewer", scope="viewer", menu=False
    ),
    Action(
        "viewer-layers",
        ("v",),
        "Layers",
        "Show both box layers, labels only, detections only or none",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    Action(
        "viewer-captions",
        ("t",),
        "Captions",
        "Show or hide the captions",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    Action(
        "viewer-zoom",
        ("z",),
        "Zoom",
        "Zoom to the chosen box (yellow; the first one when none is), or the whole image again",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    Action(
        "viewer-next-box",
        ("right_square_bracket", "n"),
        "NextBox",
        "Choose the next box and zoom to it",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    Action(
        "viewer-prev-box",
        ("left_square_bracket", "p"),
        "PrevBox",
        "Choose the previous box and zoom to it",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    Action(
        "viewer-info",
        ("i",),
        "Info",
        "Show or hide the image's metadata (the image takes its room)",
        "Viewer",
        scope="viewer",
        menu=False,
    ),
    # -- the triage screen (t) ------------------------------------------------------------
    Action(
        "triage-accept",
        ("a", "enter"),
        "Accept",
        "Accept the detection as the label (added, or the label takes its box and class)",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-delete",
        ("d", "delete", "f8"),
        "Delete",
        "Delete the object's label",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-class",
        ("c", "f4"),
        "Class",
        "Change the label's class (a picker: type to filter)",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-bad",
        ("b", "insert"),
        "Bad",
        "Mark the image bad: excluded from training (again: good)",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-review",
        ("r", "f5"),
        "Review",
        "Copy the image with its labels to the review folder (journaled)",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-undo",
        ("u", "ctrl+z"),
        "Undo",
        "Undo the last decision of this triage",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-next",
        ("n", "pagedown", "space", "right"),
        "Next",
        "Next object of the queue",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-prev",
        ("p", "pageup", "left"),
        "Prev",
        "Previous object of the queue",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-layers",
        ("v",),
        "Layers",
        "Show both box layers, labels only, detections only or none (the object's boxes stay)",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-captions",
        ("t",),
        "Captions",
        "Show or hide the captions",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-zoom",
        ("z",),
        "Zoom",
        "Zoom to the object's boxes, or the whole image again",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-next-box",
        ("right_square_bracket",),
        "NextBox",
        "The next object of this image (round its objects; the zoom stays)",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-prev-box",
        ("left_square_bracket",),
        "PrevBox",
        "The previous object of this image (round its objects; the zoom stays)",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-info",
        ("i",),
        "Info",
        "Show or hide the object's figures (the image takes their room)",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-back",
        ("escape", "f10", "q"),
        "Back",
        "Back to the panels",
        "Triage",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-gallery",
        ("shift+f3", "alt+g"),
        "Gallery",
        "Thumbnails of the queue: select many, mark bad, review; Enter goes to the one under the cursor",
        "Triage",
        scope="triage",
        menu=False,
    ),
    # -- box editing in triage: the current object's label -----------------------------------
    Action(
        "triage-edge",
        ("e",),
        "Edge",
        "Choose what the box keys move: the whole box, or its left, top, right or bottom edge",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-box-left",
        ("h",),
        "◂",
        "Move the label's box (or the chosen edge) a pixel left",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-box-down",
        ("j",),
        "▾",
        "Move the label's box (or the chosen edge) a pixel down",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-box-up",
        ("k",),
        "▴",
        "Move the label's box (or the chosen edge) a pixel up",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-box-right",
        ("l",),
        "▸",
        "Move the label's box (or the chosen edge) a pixel right",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-box-far-left",
        ("H",),
        "◂5%",
        "Move the label's box (or the chosen edge) left by 5% of the image",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-box-far-down",
        ("J",),
        "▾5%",
        "Move the label's box (or the chosen edge) down by 5% of the image",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-box-far-up",
        ("K",),
        "▴5%",
        "Move the label's box (or the chosen edge) up by 5% of the image",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-box-far-right",
        ("L",),
        "▸5%",
        "Move the label's box (or the chosen edge) right by 5% of the image",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-snap",
        ("equals_sign",),
        "Snap",
        "The detection's box (or its chosen edge) becomes the label's; the class stays",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
    Action(
        "triage-split",
        ("s",),
        "Split",
        "Split the view: the labels on the left, the detections on the right (again: one view)",
        "Triage boxes",
        scope="triage",
        menu=False,
    ),
)

#: The gallery's keys (Shift+F3 from the panels or triage; see :mod:`tuiops.screens.gallery`).
GALLERY_ACTIONS: tuple[Action, ...] = tuple(
    Action(f"gallery-{name}", keys, label, description, "Gallery", scope="gallery", menu=False)
    for name, keys, label, description in (
        ("left", ("left",), "◂", "Previous image"),
        ("right", ("right",), "▸", "Next image"),
        ("up", ("up",), "▴", "The image above"),
        ("down", ("down",), "▾", "The image below"),
        ("page-up", ("pageup",), "PgUp", "A screen of images back"),
        ("page-down", ("pagedown",), "PgDn", "A screen of images on"),
        ("first", ("home",), "Home", "The first image"),
        ("last", ("end",), "End", "The last image"),
        ("select", ("insert", "space"), "Select", "Select or deselect the image and go to the next"),
        ("select-mask", ("plus", "equals_sign"), "Select+", "Select images whose name matches a mask"),
        ("deselect-mask", ("minus",), "Select−", "Deselect images whose name matches a mask"),
        ("invert", ("asterisk",), "Invert", "Invert the selection of the images shown"),
        ("select-all", ("ctrl+a",), "All", "Select every image"),
        ("clear", ("ctrl+d",), "None", "Deselect everything"),
        (
            "bad",
            ("b", "alt+b"),
            "Bad",
            "Mark the selected images bad in the label set (all bad already: good)",
        ),
        (
            "review",
            ("r", "alt+r"),
            "Review",
            "Copy the selected images with their labels to the review folder",
        ),
        ("copy", ("f5", "c"), "Copy", "Copy the selected files to a folder (planned, journaled)"),
        ("layers", ("v",), "Layers", "Show both box layers, labels only, detections only or none"),
        ("size", ("s", "alt+z"), "Size", "Smaller or larger thumbnails"),
        ("open", ("enter", "f3"), "Go to", "Back with the panel's cursor (or triage) on this image"),
        ("close", ("escape", "f10", "q", "shift+f3"), "Close", "Back to the panels or triage"),
    )
)
ACTIONS = ACTIONS + GALLERY_ACTIONS

BY_ID: dict[str, Action] = {a.id: a for a in ACTIONS}

#: FAR's sort keys map to panel fields (the panel picks the nearest field it has).
SORT_FIELDS: dict[str, tuple[str, ...]] = {
    "sort-name": ("name", "key", "source"),
    "sort-ext": ("ext", "format", "class"),
    "sort-time": ("mtime", "id"),
    "sort-size": ("size", "area", "images"),
}


#: Words for the panels' typing keys (not bindings: the main screen routes them itself).
TYPING: tuple[tuple[str, str], ...] = (
    ("a-z 0-9 …", "Letters and other characters typed in a panel go to the command line"),
    ("Alt+letter", "Quick search: jump to the first name that starts with what is typed"),
)

#: The keymap table of ``tuiops.toml``: ``[tui.keymap]`` with ``ACTION-ID = "KEY,KEY"``.
KEYMAP_TABLE = "tui.keymap"
_MODIFIERS = frozenset({"ctrl", "alt", "shift", "super", "meta", "hyper"})


def _key_name(base: str) -> str | None:
    """Textual's name of a key (``?`` → ``question_mark``), or None when it names no key."""
    import unicodedata

    from textual.keys import KEY_NAME_REPLACEMENTS, Keys, key_to_character

    if len(base) == 1:
        if base.isalnum():
            return base
        try:
            name = unicodedata.name(base).lower().replace("-", "_").replace(" ", "_")
        except ValueError:
            return None
        return KEY_NAME_REPLACEMENTS.get(name, name)
    if base in {k.value for k in Keys} or key_to_character(base) is not None:
        return base
    if base.startswith("f") and base[1:].isdigit() and 1 <= int(base[1:]) <= 24:
        return base
    return None


def parse_keys(value: object, where: str) -> str:
    """A keymap entry (``"f3,ctrl+v"`` or ``["f3", "ctrl+v"]``) as Textual's key string.

    Raises :class:`WorkspaceError` naming ``where`` (the toml key) for anything else.
    """
    from tuiops.errors import WorkspaceError

    hint = 'write keys as Textual names them, comma-separated: "f3,ctrl+v", "alt+x", "?"'
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise WorkspaceError(f"{where} must be a string of keys or a list of them, not {value!r}", hint=hint)
    out = []
    for raw in items:
        key = raw.strip()
        if not key:
            raise WorkspaceError(f"{where} has an empty key in {value!r}", hint=hint)
        *mods, base = key.split("+") if key != "+" else [key]
        bad = [m for m in mods if m.lower() not in _MODIFIERS]
        name = _key_name(base if len(base) == 1 else base.lower())
        if bad or name is None:
            what = f"modifier {bad[0]!r}" if bad else f"key {base!r}"
            raise WorkspaceError(f"{where}: {key!r} has an unknown {what}", hint=hint)
        out.append("+".join([*(m.lower() for m in mods), name]))
    return ",".join(out)


def keymap_from_config(raw: dict[str, object], source: str) -> dict[str, str]:
    """The user keymap of ``tuiops.toml`` (``[tui.keymap]``): action id → Textual key string.

    Every id must be an action of :data:`ACTIONS` (F1 lists them); an unknown id or key is a
    :class:`WorkspaceError` that names the toml key.
    """
    from tuiops.errors import WorkspaceError

    tui = raw.get("tui", {})
    if not isinstance(tui, dict):
        raise WorkspaceError(f"{source}: [tui] must be a table")
    table = tui.get("keymap", {})
    if not isinstance(table, dict):
        raise WorkspaceError(f'{source}: [{KEYMAP_TABLE}] must be a table of ACTION-ID = "KEYS"')
    out: dict[str, str] = {}
    for action_id, value in table.items():
        where = f"{source}: [{KEYMAP_TABLE}] {action_id}"
        if action_id not in BY_ID:
            near = [a.id for a in ACTIONS if action_id.split("-")[0] in a.id][:6]
            raise WorkspaceError(
                f"{where}: no action has that id",
                hint="F1 lists each action's id"
                + (
                    f"; near it: {', '.join(near)}"
                    if near
                    else "; e.g. view, copy, quick-view, triage-accept"
                ),
            )
        out[action_id] = parse_keys(value, where)
    return out


def effective_keys(action: Action, keymap: dict[str, str] | None = None) -> tuple[str, ...]:
    """The keys that run ``action`` under ``keymap``: the keymap's own, or the defaults less
    those the keymap gave to another action of the same screen."""
    if not keymap:
        return action.keys
    if action.id in keymap:
        return tuple(keymap[action.id].split(","))
    taken = {
        k for a in ACTIONS if a.scope == action.scope and a.id in keymap for k in keymap[a.id].split(",")
    }
    return tuple(k for k in action.keys if k not in taken)


def bindings(scope: str) -> list[BindingType]:
    """Textual bindings of one scope, generated from the table."""
    out: list[BindingType] = []
    for a in ACTIONS:
        if a.scope != scope:
            continue
        out.append(
            Binding(
                ",".join(a.keys),
                a.action,
                a.label,
                show=a.fkey is not None,
                id=a.id,
                priority=a.priority,
                tooltip=a.description,
            )
        )
    return out


def key_bar_text(scope: str) -> Text:
    """The keys of a screen, from the action table: the first key of each action and its label."""
    text = Text(no_wrap=True, overflow="crop")
    for a in ACTIONS:
        if a.scope != scope:
            continue
        text.append(f" {key_display(a.keys[0])}", "bold")
        text.append(f" {a.label} ")
    return text


def key_display(key: str) -> str:
    """How a key is written in the help and the menu (F3, Ctrl+Q, Ins, +)."""
    names = {
        "question_mark": "?",
        "plus": "+",
        "minus": "-",
        "asterisk": "*",
        "equals_sign": "=",
        "right_square_bracket": "]",
        "left_square_bracket": "[",
        "slash": "/",
        "colon": ":",
        "insert": "Ins",
        "delete": "Del",
        "space": "Space",
        "enter": "Enter",
        "tab": "Tab",
        "escape": "Esc",
        "backspace": "BkSp",
        "pageup": "PgUp",
        "pagedown": "PgDn",
        "home": "Home",
        "end": "End",
        "up": "↑",
        "down": "↓",
        "left": "←",
        "right": "→",
    }
    parts = key.split("+")
    out = []
    for p in parts:
        if p in names:
            out.append(names[p])
        elif p.startswith("f") and p[1:].isdigit():
            out.append(p.upper())
        elif p in ("ctrl", "alt", "shift"):
            out.append(p.capitalize())
        else:
            out.append(p.upper() if len(p) == 1 and len(parts) > 1 else p)
    return "+".join(out)


def keys_display(action: Action, keymap: dict[str, str] | None = None) -> str:
    return ", ".join(key_display(k) for k in effective_keys(action, keymap)) or "(none)"


def fkey_bar(keymap: dict[str, str] | None = None) -> list[tuple[int, Action]]:
    """The F-key bar: each plain F-key of the main screen with its action, in F-key order.

    An action's slot is the plain F-key among its keys (after ``keymap``), else none."""
    slots: dict[int, Action] = {}
    for a in ACTIONS:
        if a.scope != "main":
            continue
        for k in effective_keys(a, keymap):
            if k.startswith("f") and k[1:].isdigit() and int(k[1:]) not in slots:
                slots[int(k[1:])] = a
                break
    return sorted(slots.items())


def alt_letter(key: str) -> str | None:
    """The letter or digit of an Alt+letter key (``alt+shift+a`` → ``A``), else None."""
    if not key.startswith("alt+"):
        return None
    rest = key[4:]
    if rest.startswith("shift+"):
        rest = rest[6:].upper()
    return rest if len(rest) == 1 and rest.isalnum() else None


def command_words() -> dict[str, Action]:
    """Words that run a main-screen action when typed alone on the command line."""
    return {w: a for a in ACTIONS if a.scope == "main" for w in a.command}


def groups(
    scopes: tuple[str, ...] = ("main", "table", "jobs", "output", "viewer", "triage", "gallery"),
) -> dict[str, list[Action]]:
    """Actions by group, in table order (for the help screen)."""
    out: dict[str, list[Action]] = {}
    for a in ACTIONS:
        if a.scope in scopes:
            out.setdefault(a.group, []).append(a)
    return out
