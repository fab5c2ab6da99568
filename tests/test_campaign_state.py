"""The campaign state file's wall time survives a kill: a running pass appends a beat with its seconds so far, and
a pass that never wrote its end event (SIGKILL, a session that goes away) counts until its last beat on the page;
one killed before beats existed is named with its bound instead of silently counting 0."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from varmixup_bench.campaigns.budget import time_section
from varmixup_bench.campaigns.state import CampaignState
from varmixup_bench.core.errors import BenchError

KILLED = """
import sys, time
from varmixup_bench.campaigns.state import CampaignState
st = CampaignState(sys.argv[1], beat_seconds=0.1)
st.append(event="run", command="bench campaign run plan.toml")
with st.exclusive(), st.timed("pass main", "pass"):
    print("started", flush=True)
    time.sleep(60)
"""


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_pass_killed_with_sigkill_counts_until_its_last_beat(tmp_path):
    path = tmp_path / "campaign-c.jsonl"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    lived = time.monotonic() - t0  # an upper bound on the pass's seconds, however busy the machine
    proc.wait(timeout=30)
    events = _lines(path)
    assert not [e for e in events if e["event"] == "end"]  # no chance to write it
    beats = [e for e in events if e["event"] == "beat"]
    assert len(beats) >= 5 and [b["seconds"] for b in beats] == sorted(b["seconds"] for b in beats)
    (span,) = CampaignState(path).spans()
    assert (span["status"], span["beats"], span["until"]) == ("cut short", len(beats), None)
    assert span["seconds"] == beats[-1]["seconds"] and 0.5 <= span["seconds"] <= lived
    assert span["step"] == "pass main" and span["start"] == events[1]["time"]


def test_a_pass_that_ends_stops_beating_and_its_end_is_its_span(tmp_path):
    st = CampaignState(tmp_path / "c.jsonl", beat_seconds=0.05)
    with st.timed("pass main", "pass") as info:
        time.sleep(0.4)
        info.update(cells_run=3)
    n = len([e for e in st.events() if e["event"] == "beat"])
    time.sleep(0.2)
    assert len([e for e in st.events() if e["event"] == "beat"]) == n >= 3  # the thread stopped with the block
    assert st.events()[-1]["event"] == "end"  # no beat after the end
    (span,) = st.spans()
    assert span["status"] == "ok" and span["cells_run"] == 3 and span["seconds"] >= 0.4


def _write(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


RUN1 = {"event": "run", "time": "2026-12-01T10:00:00+00:00"}
RUN2 = {"event": "run", "time": "2026-12-01T13:00:00+00:00"}


def test_spans_pair_starts_beats_and_ends_across_runs(tmp_path):
    path = tmp_path / "campaign-c.jsonl"
    _write(path, [
        RUN1,
        {"event": "start", "step": "pass a", "kind": "pass", "time": "2026-12-01T10:00:00+00:00"},
        {"event": "end", "step": "pass a", "kind": "pass", "time": "2026-12-01T10:10:00+00:00", "seconds": 600.0,
         "stopped_seconds": 0.0, "status": "ok", "cells_run": 2},
        {"event": "start", "step": "pass b", "kind": "pass", "time": "2026-12-01T10:10:00+00:00"},
        {"event": "beat", "step": "pass b", "kind": "pass", "time": "2026-12-01T10:11:00+00:00", "seconds": 60.0,
         "stopped_seconds": 0.0},
        {"event": "beat", "step": "pass b", "kind": "pass", "time": "2026-12-01T10:12:00+00:00", "seconds": 110.0,
         "stopped_seconds": 10.0},
        RUN2,  # the first run was killed in pass b, after its second beat
        {"event": "start", "step": "pass b", "kind": "pass", "time": "2026-12-01T13:00:00+00:00"},
    ])
    st = CampaignState(path)
    a, b_killed, b_open = st.spans()
    assert (a["status"], a["seconds"], a["cells_run"]) == ("ok", 600.0, 2)
    assert (b_killed["status"], b_killed["seconds"], b_killed["stopped_seconds"], b_killed["beats"]) == \
        ("cut short", 110.0, 10.0, 2)
    assert b_killed["until"] == RUN2["time"] and b_killed["time"] == "2026-12-01T10:12:00+00:00"
    # the last run's open pass: nobody holds the lock, so it was killed too, before its first beat
    assert (b_open["status"], b_open["seconds"], b_open["beats"], b_open["until"]) == ("cut short", 0.0, 0, None)
    assert [s["step"] for s in st.spans("pass b")] == ["pass b", "pass b"]
    # while a run holds the lock, the open pass is running, not cut short
    with st.exclusive():
        assert CampaignState(path).spans()[-1]["status"] == "running"
    assert CampaignState(path).spans()[-1]["status"] == "cut short"


def test_the_time_section_counts_beats_and_bounds_what_was_killed_before_beats(tmp_path):
    path = tmp_path / "campaign-c.jsonl"
    _write(path, [
        RUN1,
        {"event": "start", "step": "pass a", "kind": "pass", "time": "2026-12-01T10:00:00+00:00"},  # no beat: legacy
        RUN2,
        {"event": "start", "step": "pass a", "kind": "pass", "time": "2026-12-01T13:00:00+00:00"},
        {"event": "beat", "step": "pass a", "kind": "pass", "time": "2026-12-01T13:01:00+00:00", "seconds": 60.0,
         "stopped_seconds": 0.0},
        {"event": "run", "time": "2026-12-01T14:00:00+00:00"},
        {"event": "start", "step": "pass a", "kind": "pass", "time": "2026-12-01T14:00:00+00:00"},
        {"event": "end", "step": "pass a", "kind": "pass", "time": "2026-12-01T14:05:00+00:00", "seconds": 300.0,
         "stopped_seconds": 0.0, "status": "ok"},
    ])
    text = time_section(CampaignState(path), 3, train_s=100.0, eval_s=20.0)
    assert CampaignState(path).wall_seconds() == (360.0, 10800.0, False)  # what `campaign status` adds up too
    assert "Wall time: **360.0 s (0.10 h)**" in text  # 300 ended + 60 until the killed run's last beat
    assert "2 pass(es) or step(s) were killed before they ended" in text
    # the legacy one is not counted, and its bound is its start to the next run's start: 3 h
    assert "1 of them before heartbeats were written" in text and "at most 10800.0 s (3.00 h) more" in text
    assert "Computation: **120.0 s (0.03 h)**" in text and "Running now" not in text


def test_beat_seconds_must_be_positive(tmp_path):
    with pytest.raises(BenchError, match="beat_seconds must be positive, got 0"):
        CampaignState(tmp_path / "c.jsonl", beat_seconds=0)


def test_a_model_timed_before_the_stop_aware_clock_is_marked_and_read_at_its_median_epoch(tmp_path):
    """An epoch timed before the stop-aware clock holds any SIGSTOP pause (the paper plan's VarMixup had one of
    5,809 s among epochs of ~110 s): the training budget marks the model †, shows its median epoch beside the
    mean, and the Computation line gives the total at the median epochs of such models too."""
    from varmixup_bench.campaigns.budget import _median_epoch, _unclocked, training_section

    old = {"history": [{"epoch": i, "seconds": s} for i, s in enumerate((110.0, 5809.0, 100.0, 120.0))]}
    new = {"history": [{"epoch": i, "seconds": 60.0, "stopped_seconds": 0.0} for i in range(4)]}
    assert _unclocked(old) and not _unclocked(new) and _median_epoch(old) == 115.0
    rows = [{"model": "varmixup", "used by": "varmixup", "seed": 0, "epochs": 4, "seconds": 6139.0,
             "median": 115.0, "unclocked": True, "key": "k0"},
            {"model": "erm", "used by": "erm", "seed": 1, "epochs": 4, "seconds": 240.0, "median": 60.0,
             "unclocked": False, "key": "k1"}]
    table = training_section(rows)
    assert "| varmixup | varmixup | 0 | 4 | 6139.0† | 1534.8 | 115.0 |" in table
    assert "| erm | erm | 1 | 4 | 240.0 | 60.0 | 60.0 |" in table and "† timed (in part) before" in table
    path = tmp_path / "campaign-c.jsonl"
    _write(path, [RUN1])
    text = time_section(CampaignState(path), 1, train_s=6379.0, eval_s=0.0, train_median_s=4 * 115.0 + 240.0)
    assert "at each model's median epoch 700.0 s (0.19 h)" in text and "cost this campaign's wall time nothing" in text


def test_cells_evaluated_count_records_written_while_the_pass_ran_killed_runs_included():
    """A pass evaluated across killed sessions: records written inside its spans count (a killed span up to the next
    run's start, a running one up to now); one written before (reused from another plan) does not. The runs' own
    cells_run, written only at a pass's end, had counted none of the killed runs' cells."""
    from varmixup_bench.campaigns.status import cells_written_during

    spans = [{"start": "2026-12-01T10:00:00+00:00", "time": "2026-12-01T10:30:00+00:00", "status": "cut short",
              "until": "2026-12-01T11:00:00+00:00"},
             {"start": "2026-12-01T11:00:00+00:00", "time": "2026-12-01T11:20:00+00:00", "status": "ok"},
             {"start": "2026-12-01T12:00:00+00:00", "time": "2026-12-01T12:01:00+00:00", "status": "running"}]
    written = {"a": "2026-12-01T10:45:00+00:00",  # after the killed run's last beat, before the next run
               "b": "2026-12-01T11:10:00+00:00", "c": "2026-12-01T13:00:00+00:00",
               "old": "2026-11-30T09:00:00+00:00"}  # another plan's record, reused
    assert cells_written_during(["a", "b", "c", "old", "none"], written, spans) == 3
    assert cells_written_during(["a"], written, spans[:1]) == 1 and cells_written_during(["b"], written, spans[2:]) == 0


def test_status_says_when_the_forecast_would_end_from_now():
    from datetime import datetime, timezone

    from varmixup_bench.campaigns.status import finish_text

    now = datetime(2026, 12, 2, 22, 50, tzinfo=timezone.utc)
    assert finish_text(9.8 * 3600, 0, now) == ("if it runs from now on without a stop (no pause, no session's end): "
                                               "done about 2026-12-03 08:38 UTC")
    assert finish_text(60, 2, now).endswith("done about 2026-12-02 22:51 UTC, not counting the 2 unknown estimate(s)")
