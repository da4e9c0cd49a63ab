"""The user's own SQL objects: tables and views in user.db beside the store (`query --write`),
views named in tuiops.toml, both read by `query`, listed in the app's catalog and used as
`select --view`; nothing the user writes reaches the store's tables. All on real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.test_triage import copy_workspace
from tests.test_tui_browse import build_workspace
from tuiops.cli import run
from tuiops.ops.browse import Spec
from tuiops.workspace import Workspace


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_workspace(tmp_path_factory.mktemp("usersql") / "demo")


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    out = tmp_path / "demo"
    out.mkdir()
    copy_workspace(built, out)
    return out


def query(root: Path, sql: str, *extra: str) -> int:
    return run(["-w", str(root), "query", sql, *extra])


def rows(root: Path, sql: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert query(root, sql, "--format", "json") == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def store_dump(root: Path) -> list[object]:
    """The store's schema and every row of its tables, read by SQLite alone (virtual tables are
    read through their shadow tables)."""
    conn = sqlite3.connect(f"file:{root / 'tuiops.db'}?mode=ro", uri=True)
    try:
        schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
        out: list[object] = list(schema)
        for _, name, _, sql in schema:
            if _ == "table" and not (sql or "").upper().startswith("CREATE VIRTUAL"):
                data = conn.execute(f'SELECT * FROM "{name}"').fetchall()
                out.append((name, sorted(data, key=repr)))
        return out
    finally:
        conn.close()


def test_user_tables_are_made_filled_and_read_beside_the_store(root, capsys):
    assert not (root / "user.db").exists()
    assert query(root, "SELECT count(*) FROM v_images") == 0  # reading makes no user.db
    assert not (root / "user.db").exists()
    before = store_dump(root)
    sql = "CREATE TABLE user.flags(key TEXT PRIMARY KEY, flag TEXT NOT NULL)"
    assert query(root, sql, "--write") == 0
    assert (root / "user.db").is_file()
    ins = "INSERT INTO user.flags SELECT key, 'wide' FROM v_images WHERE width > height AND key IS NOT NULL"
    capsys.readouterr()
    assert query(root, ins, "--write", "--format", "json") == 0
    changed = json.loads(capsys.readouterr().out)[0]["changes"]
    wide = rows(
        root, "SELECT count(DISTINCT key) AS n FROM v_images WHERE width > height AND key IS NOT NULL", capsys
    )
    assert changed == wide[0]["n"] > 0
    # read without --write, joined with the store; unqualified names find the user's tables too
    got = rows(root, "SELECT f.key FROM flags f JOIN items i ON i.key = f.key ORDER BY 1", capsys)
    assert len(got) == changed
    # views, indexes and triggers over the user's own tables
    for sql in (
        "CREATE VIEW user.wide AS SELECT key FROM flags WHERE flag = 'wide'",
        "CREATE INDEX user.flags_flag ON flags(flag)",
        "CREATE TABLE user.log(key TEXT)",
        "CREATE TRIGGER user.flags_log AFTER DELETE ON flags BEGIN INSERT INTO log VALUES (old.key); END",
        "DELETE FROM user.flags WHERE rowid = (SELECT min(rowid) FROM user.flags)",
        "UPDATE user.flags SET flag = 'landscape'",
        "ALTER TABLE user.flags ADD COLUMN note TEXT",
    ):
        assert query(root, sql, "--write") == 0, (sql, capsys.readouterr().err)
    assert rows(root, "SELECT count(*) AS n FROM user.log", capsys) == [{"n": 1}]
    assert rows(root, "SELECT count(*) AS n FROM user.wide", capsys) == [{"n": 0}]
    # the user.db is a SQLite file of its own, readable by SQLite alone
    conn = sqlite3.connect(root / "user.db")
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert {"flags", "wide", "flags_flag", "log", "flags_log"} <= names
    assert query(root, "DROP VIEW user.wide", "--write") == 0
    assert store_dump(root) == before  # the store did not change at all


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("CREATE TABLE flags(key TEXT)", "in the store"),
        ("CREATE TABLE main.flags(key TEXT)", "in the store"),
        ("INSERT INTO pools(name, root) VALUES ('x', '/x')", "INSERT on pools in the store"),
        ("UPDATE items SET key = 'x'", "UPDATE on items in the store"),
        ("DELETE FROM files", "DELETE on files in the store"),
        ("DROP TABLE files", "in the store"),
        ("DROP VIEW v_images", "in the store"),
        ("ALTER TABLE files ADD COLUMN x", "ALTER TABLE files in the store"),
        ("ALTER TABLE files RENAME TO f2", "ALTER TABLE files in the store"),
        ("CREATE INDEX files_x ON files(size)", "in the store"),
        (
            "CREATE TRIGGER t AFTER INSERT ON files BEGIN SELECT 1; END",
            "CREATE TRIGGER t on files in the store",
        ),
        ("CREATE TEMP TABLE t(a)", "TEMP"),
        ("CREATE TEMP TRIGGER t AFTER DELETE ON files BEGIN SELECT 1; END", "TEMP"),
        ("ATTACH 'other.db' AS other", "ATTACH"),
        ("DETACH user", "DETACH"),
        ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode"),
        ("PRAGMA user.user_version = 3", "PRAGMA user_version"),
        ("BEGIN", "a transaction"),
        ("SAVEPOINT a", "SAVEPOINT"),
        ("VACUUM", "VACUUM"),
        ("VACUUM user INTO 'other.db'", "VACUUM"),
        ("REINDEX files", "REINDEX"),
        ("ANALYZE main", "ANALYZE"),
        ("SELECT load_extension('x')", "load_extension"),
    ],
)
def test_writes_to_the_store_are_refused(root, capsys, sql, what):
    assert query(root, "CREATE TABLE user.flags(key TEXT)", "--write") == 0
    before = store_dump(root)
    capsys.readouterr()
    code = query(root, sql, "--write")
    err = capsys.readouterr().err
    assert code in (2, 4), err
    assert what in err and "Traceback" not in err, err
    assert store_dump(root) == before
    assert not (root / "other.db").exists()


def test_a_trigger_in_user_db_on_a_store_table_is_refused(root, capsys):
    capsys.readouterr()
    code = query(root, "CREATE TRIGGER user.t AFTER INSERT ON main.files BEGIN SELECT 1; END", "--write")
    err = capsys.readouterr().err
    assert code == 4 and "cannot reference objects in database main" in err, err


def test_without_write_the_user_schema_is_read_only_too(root, capsys):
    assert query(root, "CREATE TABLE user.flags(key TEXT)", "--write") == 0
    capsys.readouterr()
    assert query(root, "INSERT INTO user.flags VALUES ('a')") == 2
    err = capsys.readouterr().err
    assert "read-only" in err and "tuiops query --write" in err
    assert query(root, "CREATE TABLE user.other(a)") == 2
    assert rows(root, "SELECT count(*) AS n FROM user.flags", capsys) == [{"n": 0}]


def test_a_user_db_view_over_the_store_is_refused_and_not_kept(root, capsys):
    capsys.readouterr()
    assert query(root, "CREATE VIEW user.big AS SELECT key FROM v_images WHERE width > 100", "--write") == 4
    err = capsys.readouterr().err
    assert "sees only the tables of user.db" in err and "not kept" in err and "[views]" in err, err
    assert rows(root, "SELECT name FROM user.sqlite_master", capsys) == []


def write_views(root: Path, text: str) -> None:
    cfg = root / "tuiops.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def test_toml_views_are_queried_listed_and_select_filters(root, capsys):
    assert query(root, "CREATE TABLE user.flags(key TEXT, flag TEXT)", "--write") == 0
    keys = [
        r["key"]
        for r in rows(root, "SELECT key FROM v_images WHERE key IS NOT NULL ORDER BY key LIMIT 4", capsys)
    ]
    values = ", ".join(f"('{k}', 'blurry')" for k in keys[:3])
    assert query(root, f"INSERT INTO user.flags VALUES {values}, ('nobody_1', 'blurry')", "--write") == 0
    write_views(
        root,
        '[views]\nsmall = "SELECT key, width FROM v_images WHERE width < 100"\n'
        "blurry = { sql = \"SELECT i.id AS item_id FROM user.flags f JOIN items i ON i.key = f.key WHERE f.flag = 'blurry'\" }\n",
    )
    small = rows(root, "SELECT key FROM v_images WHERE width < 100 ORDER BY key", capsys)
    assert rows(root, "SELECT key FROM small ORDER BY key", capsys) == small
    # select --view: the images a view names by key (small) or by item_id (blurry)
    capsys.readouterr()
    assert run(["-w", str(root), "select", "--view", "blurry", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 3 and {r["key"] for r in out["sample"]} == set(keys[:3])
    # with a --where over it, saved, and used by another selection command
    w = ["-w", str(root)]
    assert (
        run([*w, "select", "--view", "flags", "--where", f"key <> '{keys[0]}'", "--json", "--save", "fl"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 2 and out["unknown_keys"] == 1  # nobody_1 is reported, not dropped
    assert query(root, f"DELETE FROM user.flags WHERE key = '{keys[1]}'", "--write") == 0
    capsys.readouterr()
    assert run([*w, "select", "--selection", "fl", "--json"]) == 0  # the view is read anew
    assert json.loads(capsys.readouterr().out)["images"] == 1
    # a --where may read them in a sub-select
    assert run([*w, "select", "--where", "key IN (SELECT key FROM user.flags)", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 2
    sub = "key IN (SELECT key FROM user.flags) OR key IN (SELECT key FROM small)"
    want = rows(
        root,
        "SELECT count(*) AS n FROM v_images WHERE key IN (SELECT key FROM flags UNION SELECT key FROM small)",
        capsys,
    )
    capsys.readouterr()
    assert run([*w, "select", "--where", sub, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == want[0]["n"]
    assert (
        run([*w, "select", "--where", "key IN (SELECT key FROM user.flags WHERE load_extension('x'))"]) == 4
    )
    assert run([*w, "select", "--view", "nope"]) == 5
    assert "small" in capsys.readouterr().err
    # the app's catalog lists them, and each opens as a query panel
    from tuiops.ops.browse import Context, Spec, make_source

    with Workspace.open(root) as ws:
        cat = make_source(ws.store, Spec("catalog"), Context(), ws=ws)
        frame = cat.build(ws.store)
        mine = frame.filter(frame["what"].is_in(["view", "table"]))
        assert sorted(mine.select("name", "what").rows()) == [
            ("blurry", "view"),
            ("flags", "table"),
            ("small", "view"),
        ]
        target = mine.filter(mine["name"] == "small")["_target"][0]
        src = make_source(ws.store, Spec.parse(target), Context(), ws=ws)
        assert sorted(src.build(ws.store)["key"].to_list()) == [r["key"] for r in small]


def test_a_toml_view_that_cannot_be_made_is_named(root, capsys):
    write_views(root, '[views]\nv_images = "SELECT 1"\nbroken = "SELEC key FROM v_images"\n')
    capsys.readouterr()
    assert query(root, "SELECT * FROM broken") == 4
    err = capsys.readouterr().err
    assert "the view broken of tuiops.toml could not be made" in err and "syntax error" in err, err
    assert query(root, "SELECT count(*) FROM v_images") == 0  # the store's view is not hidden
    assert run(["-w", str(root), "select", "--view", "v_images"]) == 4
    assert "would hide" in capsys.readouterr().err


def test_the_user_connection_is_the_stores_held_in_its_gate_and_never_closed(root):
    """User SQL runs on a pooled connection of the store (never closed before exit, so no lock
    of the store file is dropped) and holds the store's gate for sqlite3 while it runs."""
    from tuiops.store import user_connection
    from tuiops.store.connections import POOL, SQLITE3

    with Workspace.open(root) as ws:
        path = ws.store.path
        gate = POOL.gate(path)
        with user_connection(path, write=True) as conn:
            assert gate.active[SQLITE3] >= 1
            assert conn in POOL.all
            files = {r[1]: r[2] for r in conn.execute("PRAGMA database_list")}
            assert files["main"] == str(path) and files["user"] == str(root.resolve() / "user.db")
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                conn.execute("CREATE TABLE main.t(a)")  # the store is opened read-only here
        assert gate.active[SQLITE3] == 0
        with user_connection(path) as again:
            assert again is conn  # handed back to the pool, not closed


def test_the_app_lists_the_users_views_and_tables_and_opens_them(root, capsys):
    """In the terminal app the catalog lists the user's tables and views; Enter opens one."""
    from tests.test_tui_app import drive, goto, names, right, settle

    assert query(root, "CREATE TABLE user.flags(key TEXT, flag TEXT)", "--write") == 0
    first = rows(root, "SELECT key FROM v_images WHERE key IS NOT NULL ORDER BY key LIMIT 1", capsys)[0][
        "key"
    ]
    assert query(root, f"INSERT INTO user.flags VALUES ('{first}', 'blurry')", "--write") == 0
    write_views(root, '[views]\nsmall = "SELECT key, width FROM v_images WHERE width < 100"\n')
    n_small = rows(root, "SELECT count(*) AS n FROM small", capsys)[0]["n"]

    async def scenario(pilot, app):
        assert {"flags", "small"} <= set(names(right(app)))
        await pilot.press("tab")
        assert app.main_screen.active_side == "right"
        await goto(pilot, right(app), "flags")
        await pilot.press("enter")
        await settle(pilot)
        assert right(app).spec == Spec("query", 'SELECT * FROM user."flags"')
        assert right(app).pager.count == 1 and right(app).table.current_row()["key"] == first
        await pilot.press("backspace")
        await settle(pilot)
        await goto(pilot, right(app), "small")
        await pilot.press("enter")
        await settle(pilot)
        assert right(app).pager.count == n_small

    drive(root, scenario)
