"""The one action table: every key of the app, its id, its description and its group.

The main screen's bindings, the F-key bar at the bottom, the F9 menu and the F1 help
screen are all generated from :data:`ACTIONS`, so they cannot disagree. Keys follow FAR
Manager (and Midnight Commander) where those have one; each F-key has a non-keypad
alternative (a plain or Ctrl/Alt letter) for terminals and keyboards where F-keys are taken.
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
    #: output), "viewer" (the F3 image viewer), "triage" (the triage screen).
    scope: str = "main"
    #: Shown in the F9 menu.
    menu: bool = True
    #: Handled before the focused widget (keys an Input would otherwise swallow).
    priority: bool = False

    @property
    def action(self) -> str:
        return self.id.replace("-", "_")


ACTIONS: tuple[Action, ...] = (
    # -- files ---------------------------------------------------------------------------
    Action("help", ("f1", "question_mark"), "Help", "Keys, commands and filter fields", "App", 1),
    Action("view", ("f3", "v"), "View", "View the image under the cursor with its boxes", "Files", 3),
    Action("edit", ("f4", "e"), "Edit", "Open the image in the configured label editor", "Files", 4),
    Action(
        "copy",
        ("f5", "c"),
        "Copy",
        "Copy the selection to the other panel's folder (planned, journaled)",
        "Files",
        5,
    ),
    Action(
        "move",
        ("f6", "m"),
        "RenMov",
        "Move the selection to the other panel's folder (planned, journaled)",
        "Files",
        6,
    ),
    Action("mkdir", ("f7", "n"), "MkFold", "Make a folder in the pool folder", "Files", 7),
    Action(
        "delete",
        ("f8", "delete"),
        "Delete",
        "Move the selection to the workspace trash (planned, journaled)",
        "Files",
        8,
    ),
    Action("menu", ("f9", "ctrl+p"), "Menu", "Menu of every action", "App", 9),
    Action("quit", ("f10", "q"), "Quit", "Quit tuiops", "App", 10),
    Action(
        "save-script",
        ("ctrl+s", "alt+s"),
        "Script",
        "Save this session's commands and file operations as a `tuiops run` script",
        "App",
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
        ("ctrl+q", "alt+q"),
        "Quick",
        "Quick view: the other panel shows the image under the cursor",
        "Panels",
        priority=True,
    ),
    Action(
        "sync-panels",
        ("ctrl+k", "k"),
        "Sync",
        "Keep the other panel on the boxes of the image under the cursor",
        "Panels",
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
        "jobs", ("f12", "j"), "Jobs", "Show or hide the jobs pane (progress, ETA, cancel, errors)", "Panels"
    ),
    Action(
        "output",
        ("ctrl+o", "alt+o"),
        "Output",
        "The output of the last command of the app (or of the job picked in the jobs pane), live",
        "Panels",
    ),
    Action(
        "triage",
        ("ctrl+t", "t"),
        "Triage",
        "Triage the label set against the run: one key to accept, delete, re-class, mark bad",
        "Panels",
    ),
    Action(
        "report",
        ("alt+r", "g"),
        "Report",
        "Charts of the label set against the run: AP per class, PR curves, confusion, histograms",
        "Panels",
    ),
    Action(
        "monitor",
        ("alt+t", "w"),
        "Monitor",
        "Watch a training run live: epochs, losses, mAP, P/R charts, pitstops, best epoch, ETA",
        "Training",
    ),
    Action(
        "projects",
        ("alt+p", "P"),
        "Projects",
        "Dataset projects, hosts and mixes: build here or on a host, mix, push",
        "Training",
    ),
    # -- sorting and filtering -----------------------------------------------------------
    Action("sort-name", ("ctrl+f3",), "Name", "Sort by name (again: reverse)", "Sort and filter"),
    Action("sort-ext", ("ctrl+f4",), "Ext", "Sort by extension", "Sort and filter"),
    Action("sort-time", ("ctrl+f5",), "Time", "Sort by modification time", "Sort and filter"),
    Action("sort-size", ("ctrl+f6",), "Size", "Sort by size", "Sort and filter"),
    Action("sort-unsorted", ("ctrl+f7",), "Unsort", "Back to the store's order", "Sort and filter"),
    Action(
        "sort-menu",
        ("ctrl+f12", "o"),
        "Order",
        "Sort by any column (labels, detections, F1 …)",
        "Sort and filter",
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

BY_ID: dict[str, Action] = {a.id: a for a in ACTIONS}

#: FAR's sort keys map to panel fields (the panel picks the nearest field it has).
SORT_FIELDS: dict[str, tuple[str, ...]] = {
    "sort-name": ("name", "key", "source"),
    "sort-ext": ("ext", "format", "class"),
    "sort-time": ("mtime", "id"),
    "sort-size": ("size", "area", "images"),
}


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


def keys_display(action: Action) -> str:
    return ", ".join(key_display(k) for k in action.keys)


def fkey_bar() -> list[Action]:
    """The actions of the F-key bar, in F-key order (F1 … F10)."""
    return sorted((a for a in ACTIONS if a.fkey is not None), key=lambda a: a.fkey or 0)


def groups(
    scopes: tuple[str, ...] = ("main", "table", "jobs", "output", "viewer", "triage"),
) -> dict[str, list[Action]]:
    """Actions by group, in table order (for the help screen)."""
    out: dict[str, list[Action]] = {}
    for a in ACTIONS:
        if a.scope in scopes:
            out.setdefault(a.group, []).append(a)
    return out
