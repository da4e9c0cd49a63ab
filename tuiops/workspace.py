"""The workspace: a folder with ``tuiops.toml`` and the SQLite store ``tuiops.db``.

Every command finds the workspace from ``-w/--workspace``, ``TUIOPS_WORKSPACE`` or
the current folder and its parents.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, WorkspaceError
from tuiops.keys import DEFAULT_KEY_PATTERN, ImageKey, compile_key_pattern, parse_key

if TYPE_CHECKING:
    from tuiops.store import Store

CONFIG_NAME = "tuiops.toml"
DB_NAME = "tuiops.db"
ENV_VAR = "TUIOPS_WORKSPACE"

_CLASS_NAME_RX = re.compile(r"^[^\s\x00-\x1f][^\x00-\x1f]*$")


@dataclass
class HostConfig:
    name: str
    address: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    home: str | None = None
    jump: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Config:
    name: str = "workspace"
    key_pattern: str = DEFAULT_KEY_PATTERN
    classes: list[str] = field(default_factory=list)
    pools: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    editor: str = "labelImg {dir} {classes} {dir}"
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, data: dict[str, Any], source: Path) -> Config:
        def section(name: str) -> dict[str, Any]:
            value = data.get(name, {})
            if not isinstance(value, dict):
                raise WorkspaceError(f"{source}: [{name}] must be a table")
            return value

        ws = section("workspace")
        keys = section("keys")
        classes = section("classes").get("names", [])
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise WorkspaceError(f"{source}: [classes] names must be a list of strings")
        for c in classes:
            if not _CLASS_NAME_RX.match(c) or c != c.strip():
                raise WorkspaceError(
                    f"{source}: class name {c!r} is empty or has control characters or padding"
                )
        if len(set(classes)) != len(classes):
            dupes = sorted({c for c in classes if classes.count(c) > 1})
            raise WorkspaceError(f"{source}: class names repeat: {', '.join(dupes)}")
        pools = {}
        for name, value in section("pools").items():
            path = value.get("path") if isinstance(value, dict) else value
            if not isinstance(path, str):
                raise WorkspaceError(f'{source}: [pools.{name}] needs path = "…"')
            pools[name] = path
        hosts = {}
        for name, value in section("hosts").items():
            if not isinstance(value, dict) or "address" not in value:
                raise WorkspaceError(f'{source}: [hosts.{name}] needs address = "…"')
            if "password" in value:
                raise WorkspaceError(
                    f"{source}: [hosts.{name}] has a password; passwords are never stored in tuiops.toml",
                    hint="use key_file or the SSH agent; a password may come from TUIOPS_SSH_PASSWORD",
                )
            known = {"address", "port", "user", "key_file", "home", "jump"}
            hosts[name] = HostConfig(
                name=name,
                address=str(value["address"]),
                port=int(value.get("port", 22)),
                user=value.get("user"),
                key_file=value.get("key_file"),
                home=value.get("home"),
                jump=value.get("jump"),
                extra={k: v for k, v in value.items() if k not in known},
            )
        editor = section("editor").get("command", cls.editor)
        return cls(
            name=str(ws.get("name", "workspace")),
            key_pattern=str(keys.get("pattern", DEFAULT_KEY_PATTERN)),
            classes=list(classes),
            pools=pools,
            hosts=hosts,
            editor=str(editor),
            raw=data,
        )

    def to_toml(self) -> dict[str, Any]:
        data = dict(self.raw)
        data["workspace"] = {**data.get("workspace", {}), "name": self.name}
        data["keys"] = {**data.get("keys", {}), "pattern": self.key_pattern}
        data["classes"] = {**data.get("classes", {}), "names": list(self.classes)}
        data["pools"] = {name: {"path": path} for name, path in self.pools.items()}
        hosts: dict[str, Any] = {}
        for name, h in self.hosts.items():
            entry: dict[str, Any] = {"address": h.address, "port": h.port}
            for k in ("user", "key_file", "home", "jump"):
                if getattr(h, k) is not None:
                    entry[k] = getattr(h, k)
            entry.update(h.extra)
            hosts[name] = entry
        data["hosts"] = hosts
        data["editor"] = {**data.get("editor", {}), "command": self.editor}
        return data


class Workspace:
    """An opened workspace: its folder, its config and (lazily) its store."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        self.key_rx = compile_key_pattern(config.key_pattern)
        self._store: Store | None = None

    # -- locating ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def trash_dir(self) -> Path:
        return self.root / ".trash"

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Workspace:
        root = Path(root).expanduser().resolve()
        cfg = root / CONFIG_NAME
        if not cfg.is_file():
            raise WorkspaceError(
                f"{root} is not a tuiops workspace (no {CONFIG_NAME})",
                hint=f"run `tuiops init {root}` first",
            )
        try:
            data = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise WorkspaceError(
                f"{cfg}: not valid TOML: {exc}", hint="fix the file or re-create it with `tuiops init`"
            ) from exc
        return cls(root, Config.from_toml(data, cfg))

    @classmethod
    def find(cls, explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Workspace:
        """Find the workspace: explicit path, then $TUIOPS_WORKSPACE, then cwd and its parents."""
        if explicit:
            return cls.open(explicit)
        env = os.environ.get(ENV_VAR)
        if env:
            return cls.open(env)
        here = (cwd or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIG_NAME).is_file():
                return cls.open(folder)
        raise WorkspaceError(
            f"no tuiops workspace in {here} or its parents",
            hint="pass -w DIR, set TUIOPS_WORKSPACE, or create one with `tuiops init DIR`",
        )

    @classmethod
    def init(
        cls,
        root: str | os.PathLike[str],
        *,
        name: str | None = None,
        classes: list[str] | None = None,
        key_pattern: str | None = None,
        exist_ok: bool = False,
    ) -> Workspace:
        root = Path(root).expanduser().resolve()
        cfg_path = root / CONFIG_NAME
        if cfg_path.exists():
            if not exist_ok:
                raise ConflictError(
                    f"{root} is a workspace already ({CONFIG_NAME} exists)", hint="open it with -w"
                )
            ws = cls.open(root)
        else:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WorkspaceError(f"cannot create workspace folder {root}: {exc.strerror}") from exc
            config = Config(
                name=name or root.name,
                key_pattern=key_pattern or DEFAULT_KEY_PATTERN,
                classes=list(classes or []),
            )
            compile_key_pattern(config.key_pattern)
            ws = cls(root, config)
            ws.save_config()
        ws.store.sync_classes(ws.config.classes)
        return ws

    def save_config(self) -> None:
        """Write tuiops.toml atomically."""
        import tomli_w

        from tuiops.fsutil import atomic_write_bytes

        atomic_write_bytes(self.config_path, tomli_w.dumps(self.config.to_toml()).encode("utf-8"))

    # -- store -----------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            from tuiops.store import Store

            self._store = Store(self.db_path)
            self._store.sync_classes(self.config.classes)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return self.config.classes

    def parse_key(self, name: str) -> ImageKey:
        return parse_key(name, self.key_rx)

    def add_classes(self, names: list[str]) -> list[str]:
        """Append new class names to the class map (never re-orders); returns those added."""
        added = [n for n in dict.fromkeys(names) if n not in self.config.classes]
        if added:
            self.config.classes.extend(added)
            self.save_config()
            self.store.sync_classes(self.config.classes)
        return added

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A path relative to the workspace root unless absolute."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.root / p)
