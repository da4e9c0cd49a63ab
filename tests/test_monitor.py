"""The results.csv follower: half-written lines, resumed and restarted epochs, ETA, rewrites."""

from __future__ import annotations

import os

import pytest

from tuiops.cli import run
from tuiops.ops.monitor import (
    HEADER,
    ResultsFollower,
    clean_epochs,
    format_duration,
    format_epoch,
    format_footer,
    parse_results,
    summarize,
)

CSV_HEADER = (
    "epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),"
    "metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2"
)


def line(epoch: int, time: float, map50_95: float = 0.1, lr: float = 0.001) -> str:
    return f"{epoch},{time:g},1.5,1.2,1.1,0.5,0.4,{map50_95 + 0.2:g},{map50_95:g},1.6,1.3,1.2,{lr:g},{lr:g},{lr:g}"


def test_half_written_last_line_is_ignored():
    text = "\n".join([CSV_HEADER, line(1, 10), line(2, 21)]) + "\n" + line(3, 33)[:20]
    raw = parse_results(text)
    assert raw["epoch"].to_list() == [1, 2]
    assert raw["map50_95"].to_list() == [0.1, 0.1]
    assert parse_results(text + line(3, 33)[20:] + "\n")["epoch"].to_list() == [1, 2, 3]


def test_garbage_lines_and_repeated_headers_are_skipped():
    text = "\n".join([CSV_HEADER, line(1, 10), "1,2,3", CSV_HEADER, line(2, 20), "x" + line(3, 30)[1:], ""])
    assert parse_results(text)["epoch"].to_list() == [1, 2]
    assert parse_results("").height == 0
    assert parse_results("no,header,here\n1,2,3\n").height == 0
    assert parse_results(CSV_HEADER + "\n").height == 0


def test_resumed_run_repeats_epochs_and_restarts_its_clock():
    # epochs 1-4 logged, the run was killed after logging 4 but before checkpointing it,
    # and resumed from epoch 3's checkpoint: 4 is logged again, then 5.
    text = (
        "\n".join(
            [
                CSV_HEADER,
                line(1, 10),
                line(2, 20),
                line(3, 30),
                line(4, 40, 0.9),
                line(4, 12, 0.3),
                line(5, 23, 0.35),
            ]
        )
        + "\n"
    )
    state = summarize(text, epochs_total=8, pitstops=[3, 6], pitstops_done=[3])
    ep = state.epochs
    assert ep["epoch"].to_list() == [1, 2, 3, 4, 5]
    assert ep.filter(ep["epoch"] == 4)["map50_95"].item() == pytest.approx(0.3)  # the latest line wins
    assert ep["session"].to_list() == [0, 0, 0, 1, 1]
    assert ep["epoch_s"].to_list() == pytest.approx([10, 10, 10, 12, 11])
    assert state.superseded == 1 and state.sessions == 2
    assert state.best["epoch"] == 5  # the stale 0.9 of the first epoch 4 is gone
    assert state.seconds_per_epoch == pytest.approx((10 + 10 + 10 + 12 + 11) / 5)
    assert state.eta_seconds == pytest.approx(3 * state.seconds_per_epoch)
    assert state.next_pitstop == 6
    assert state.eta_pitstop == pytest.approx(1 * state.seconds_per_epoch)


def test_restart_from_an_earlier_epoch_drops_the_stale_tail():
    text = "\n".join([CSV_HEADER, *[line(e, 10 * e) for e in range(1, 6)], line(3, 9), line(4, 18)]) + "\n"
    ep = clean_epochs(parse_results(text))
    assert ep["epoch"].to_list() == [1, 2, 3, 4]  # 5 was after the restart point and is not redone yet
    assert ep["time"].to_list() == [10, 20, 9, 18]


def test_best_epoch_is_the_earliest_of_equals():
    text = "\n".join([CSV_HEADER, line(1, 1, 0.2), line(2, 2, 0.5), line(3, 3, 0.5), line(4, 4, 0.1)]) + "\n"
    state = summarize(text, epochs_total=4)
    assert state.best["epoch"] == 2
    assert state.eta_seconds == 0
    assert summarize("").best == {} and summarize("").eta_seconds is None


def test_follower_reads_increments_and_starts_over_on_rewrite(tmp_path):
    p = tmp_path / "results.csv"
    f = ResultsFollower.for_path(p)
    assert f.poll() is False and f.text == ""
    p.write_text(CSV_HEADER + "\n" + line(1, 10) + "\n" + line(2, 2)[:7], encoding="utf-8")
    assert f.poll() is True
    assert f.state().epoch == 1
    assert f.poll() is False
    with open(p, "a", encoding="utf-8") as fh:
        fh.write(line(2, 20)[7:] + "\n")
    assert f.poll() is True
    assert f.state().epochs["epoch"].to_list() == [1, 2]
    # a resume trims the file to the checkpoint's epoch (shorter: read again from the start)
    p.write_text(CSV_HEADER + "\n" + line(1, 10) + "\n", encoding="utf-8")
    assert f.poll() is True and f.resets == 1
    assert f.state().epochs["epoch"].to_list() == [1]
    # replaced by a longer file (another inode): read again too
    tmp = tmp_path / "new.csv"
    tmp.write_text(CSV_HEADER + "\n" + "\n".join(line(e, e) for e in range(1, 4)) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    assert f.poll() is True and f.resets == 2
    assert f.state().epoch == 3
    p.unlink()
    assert f.poll() is True and f.text == ""


def test_plain_text_rendering():
    text = "\n".join([CSV_HEADER, line(1, 70), line(2, 140, 0.4)]) + "\n"
    state = summarize(text, epochs_total=10, pitstops=[4], status="running")
    row = state.epochs.row(1, named=True)
    out = format_epoch(row, 10, best=True, pitstop=True)
    assert out.split()[0] == "2/10" and "*best" in out and "pitstop" in out and "1m10s" in out
    assert len(HEADER.split()) == 10
    foot = format_footer(state)
    assert (
        "epoch 2/10" in foot
        and "best epoch 2" in foot
        and "next pitstop at epoch 4" in foot
        and "ETA 9m20s" in foot
    )
    assert format_footer(state.to_dict()) == foot
    assert format_duration(None) == "-" and format_duration(3725) == "1h02m" and format_duration(5) == "5s"


def test_watch_a_results_file(tmp_path, ws, capsys):
    p = tmp_path / "results.csv"
    p.write_text(
        "\n".join([CSV_HEADER, line(1, 10), line(2, 20, 0.6), line(2, 8, 0.5), line(3, 16)]) + "\n" + "3,1",
        encoding="utf-8",
    )
    code = run(["-w", str(ws.root), "train", "watch", "--file", str(p)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.rstrip().splitlines()
    assert lines[0] == HEADER
    assert [ln.split()[0] for ln in lines[1:-1]] == ["1", "2", "3"]
    assert "2 sessions" in lines[-1]
    assert run(["-w", str(ws.root), "train", "watch"]) == 2
    assert run(["-w", str(ws.root), "train", "watch", "nope"]) == 5


def test_one_epoch_sessions_are_told_apart_by_the_stores_resume_points():
    # three sessions of one epoch each, and a fourth of two: every session's clock starts at
    # about the same time, so the clock alone never goes back between them
    text = (
        "\n".join([CSV_HEADER, line(1, 5.0), line(2, 5.2), line(3, 5.4), line(4, 5.5), line(5, 9.5)]) + "\n"
    )
    alone = clean_epochs(parse_results(text))
    assert alone["session"].to_list() == [0, 0, 0, 0, 0]  # what the file alone can tell
    ep = clean_epochs(parse_results(text), starts=[0, 1, 2, 3])
    assert ep["session"].to_list() == [0, 1, 2, 3, 3]
    assert ep["epoch_s"].to_list() == pytest.approx([5.0, 5.2, 5.4, 5.5, 4.0])
    state = summarize(text, epochs_total=6, starts=[0, 1, 2, 3])
    assert state.sessions == 4 and "4 sessions" in format_footer(state)
    assert state.seconds_per_epoch == pytest.approx((5.0 + 5.2 + 5.4 + 5.5 + 4.0) / 5)
    # a resume point with a repeated epoch (killed after logging epoch 3, resumed from 2)
    text2 = "\n".join([CSV_HEADER, line(1, 5), line(2, 10), line(3, 15, 0.9), line(3, 6), line(4, 12)]) + "\n"
    ep2 = clean_epochs(parse_results(text2), starts=[0, 2])
    assert ep2["epoch"].to_list() == [1, 2, 3, 4] and ep2["session"].to_list() == [0, 0, 1, 1]
    assert ep2["epoch_s"].to_list() == pytest.approx([5, 5, 6, 6])


def test_waiting_for_the_first_epoch():
    f = ResultsFollower(lambda offset: None, lambda: None)
    assert f.poll() is False
    state = f.state(epochs_total=5, starts=[0])
    assert state.epoch == 0 and not state.exists
    assert format_footer(state) == "epoch 0/5 · waiting for the first epoch (no results.csv yet)"
    assert (
        format_footer(summarize(CSV_HEADER + "\n", epochs_total=5))
        == "epoch 0/5 · waiting for the first epoch"
    )
