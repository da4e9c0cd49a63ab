"""The labelling host: masters sent to a real sshd on 127.0.0.1, edited there, fetched, checked, committed, undone."""

from __future__ import annotations

import json

import pytest

from tests.sshd import make_workspace, sshd_unavailable
from tests.sshd import run_cli as cli
from tests.test_project_masters import voc

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def test_labelling_round_trip(tmp_path, server, capsys):
    from PIL import Image

    from tuiops.ops.project import build_state, load_project, new_project

    ws = make_workspace(tmp_path, *server)
    try:
        p = new_project(ws, "scenes", classes=["ok", "cancel"], count=2)
        for stem in ("s1", "s2", "s3"):
            Image.new("RGB", (200, 150), (120, 120, 120)).save(p.master / "images" / f"{stem}.png")
        (p.master / "annotations" / "s1.xml").write_text(voc("s1.png", (200, 150), [("ok", 10, 10, 50, 40)]))
        (p.master / "annotations" / "s2.xml").write_text(voc("s2.png", (200, 150), [("ok", 5, 5, 25, 25)]))
        before_s1 = (p.master / "annotations" / "s1.xml").read_bytes()
        capsys.readouterr()
        assert cli(ws, "project", "label", "scenes", "--on", "test", "--json", "-q") == 0
        sent = json.loads(capsys.readouterr().out)
        there = tmp_path / "home" / "labelling" / "scenes"
        assert sent["path"] == "labelling/scenes" and sent["images"] == 3 and sent["annotations"] == 2
        assert sorted(f.name for f in there.iterdir()) == [
            "classes.txt", "s1.png", "s1.xml", "s2.png", "s2.xml", "s3.png",
        ]  # fmt: skip
        assert (there / "classes.txt").read_text().split() == ["ok", "cancel"]
        # labelling on the host: s1 gets a second box, s3 its first, s2 a box past its image, s9 has no image
        (there / "s1.xml").write_text(
            voc("s1.png", (200, 150), [("ok", 10, 10, 50, 40), ("cancel", 60, 10, 120, 40)])
        )
        (there / "s3.xml").write_text(voc("s3.png", (200, 150), [("cancel", 1, 2, 30, 40)]))
        (there / "s2.xml").write_text(voc("s2.png", (200, 150), [("ok", 5, 5, 255, 25)]))
        (there / "s9.xml").write_text(voc("s9.png", (200, 150), []))
        # the diff first, nothing written
        assert cli(ws, "project", "label", "scenes", "--fetch", "--dry-run", "-q") == 4
        out = capsys.readouterr()
        assert "2 annotation(s) would change" in out.out and "+ cancel (60, 10, 120, 40)" in out.out
        assert (
            "s2.xml line 8" in out.err and "reaches past the 200×150 image" in out.err and "s9.xml" in out.err
        )
        assert (p.master / "annotations" / "s1.xml").read_bytes() == before_s1
        assert not (p.master / "annotations" / "s3.xml").exists()
        # committed as one revision
        assert build_state(ws, load_project(ws, "scenes")) == "none"
        assert cli(ws, "project", "label", "scenes", "--fetch", "--json", "-q") == 4
        res = json.loads(capsys.readouterr().out)
        assert sorted(res["changed"]) == ["s1.xml", "s3.xml"] and res["revision"] == 1
        assert res["changed"]["s3.xml"]["new_file"] and len(res["left_out"]) == 2
        assert (p.master / "annotations" / "s1.xml").read_bytes() == (there / "s1.xml").read_bytes()
        assert (p.master / "annotations" / "s2.xml").read_text().count(
            "<object>"
        ) == 1  # the bad edit left out
        assert ws.store.one("SELECT count(*) FROM project_label_revisions WHERE project = 'scenes'") == 1
        # the committed masters build; fetching again changes nothing
        from tuiops.ops.project import build_project

        assert build_project(ws, "scenes").status == "built"
        (there / "s2.xml").unlink()
        (there / "s9.xml").unlink()
        assert cli(ws, "project", "label", "scenes", "--fetch") == 0
        assert "nothing changed; 2 unchanged, 0 left out" in capsys.readouterr().out
        # and the revision is undone
        assert cli(ws, "project", "label", "scenes", "--undo") == 0
        assert (p.master / "annotations" / "s1.xml").read_bytes() == before_s1
        assert not (p.master / "annotations" / "s3.xml").exists()
        assert build_state(ws, load_project(ws, "scenes")) == "stale"
        assert cli(ws, "project", "label", "scenes", "--undo") == 2
    finally:
        ws.close()
