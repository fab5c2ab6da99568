"""core.clock: measured durations (epochs, evaluations, campaign passes) leave out the time the process was
stopped (SIGSTOP, as a user pauses a background campaign to run the tests), and count no stop where there was
none."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

CHILD = """
import time
from varmixup_bench.core.clock import running_time, stopped_time
t0, s0, w0, c0 = running_time(), stopped_time(), time.monotonic(), time.process_time()
print("ready", flush=True)
while time.process_time() - c0 < 1.5:  # 1.5 s of CPU work: a stop does not advance it
    sum(i * i for i in range(10000))
print(running_time() - t0, stopped_time() - s0, time.monotonic() - w0, flush=True)
"""


def _child(stop_for: float) -> tuple[float, float, float]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout.readline().strip() == "ready"
    if stop_for:
        time.sleep(0.4)
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(stop_for)
        os.kill(proc.pid, signal.SIGCONT)
    running, stopped, wall = map(float, proc.stdout.readline().split())
    assert proc.wait(timeout=60) == 0
    return running, stopped, wall


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="POSIX signals")
def test_a_stop_is_left_out_of_the_running_time_and_counted_as_stopped():
    running, stopped, wall = _child(stop_for=2.5)
    assert stopped == pytest.approx(2.5, abs=0.5)  # the stop, seen by the detector's late wake-up
    assert running == pytest.approx(wall - stopped, abs=0.05)
    # the work's 1.5 CPU seconds, not the 2.5 s held; process_time also counts the detector's own thread, which
    # runs on another core, so the loop can end a few milliseconds before 1.5 s of wall time (CI saw 1.4996)
    assert running < wall - 2.0 and running >= 1.4


def test_no_stop_no_stopped_time():
    running, stopped, wall = _child(stop_for=0.0)
    assert stopped == 0.0 and running == pytest.approx(wall, abs=0.05)


def test_a_stop_not_yet_seen_by_the_detector_is_counted_when_the_clock_is_read():
    """Read right after SIGCONT, before the detector's thread wakes: the pending gap is already stopped time."""
    from varmixup_bench.core.clock import StopDetector

    d = StopDetector(beat=0.2, grace=1.5)
    d._last = 100.0  # the thread last woke at t = 100 (never started here: the reading alone decides)
    assert d.stopped(now=101.0) == 0.0  # 0.8 s late: a slow scheduler, not a stop
    assert d.stopped(now=105.2) == pytest.approx(4.99, abs=0.02)  # 5 s since the last wake-up, less one beat
    # the running clock never goes back: read at 101.6 (1.4 s late: running), then at 101.8 (1.6 s late: a stop)
    assert d.running(now=101.6) == pytest.approx(101.6)
    assert d.running(now=101.8) == pytest.approx(101.6)  # held, not 100.2


def test_a_campaign_pass_records_its_running_and_stopped_seconds(tmp_path, monkeypatch):
    import varmixup_bench.campaigns.state as state

    clock = iter([10.0, 17.0])  # running time at the start and the end of the block
    stops = iter([1.0, 4.0])  # stopped time: 3 s stopped during the block
    monkeypatch.setattr(state, "running_time", lambda: next(clock))
    monkeypatch.setattr(state, "stopped_time", lambda: next(stops))
    st = state.CampaignState(tmp_path / "c.jsonl")
    with st.timed("pass main", "pass"):
        pass
    (end,) = [e for e in st.events() if e["event"] == "end"]
    assert (end["seconds"], end["stopped_seconds"], end["status"]) == (7.0, 3.0, "ok")
