"""leaderboards/background.sh and campaign_state.sh: a campaign run in the background commits its state to git as
PARTIAL, and a new machine (an empty workdir) gets every record back from that commit and resumes without
evaluating anything twice."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLAN = """
[campaign]
name = "{name}"
dataset = "digits"
preset = "quick"
set = {{ epochs = {{ erm = 1, mixup = 1 }}, test_subset = 40 }}

[[pass]]
name = "main"
defenses = {defenses}
attacks = ["clean", "pgd10"]
seeds = [0]
"""

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in ("git", "pgrep", "setsid", "bash")),
                                reason="needs git, pgrep, setsid and bash")


@pytest.fixture()
def repo(tmp_path, private_cache):
    """A git repository with the two scripts and two small plans, the project's bench on PATH."""
    r = tmp_path / "repo"
    (r / "leaderboards").mkdir(parents=True)
    for script in ("background.sh", "campaign_state.sh"):
        shutil.copy2(ROOT / "leaderboards" / script, r / "leaderboards" / script)
    (r / "leaderboards" / "one.toml").write_text(PLAN.format(name="one", defenses='["erm"]'))
    (r / "leaderboards" / "two.toml").write_text(PLAN.format(name="two", defenses='["erm", "mixup"]'))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "SAVE_EVERY": "2", "THREADS": "1", "OMP_NUM_THREADS": "1"}
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "plans"]):
        subprocess.run(cmd, cwd=r, env=env, check=True)
    return r, env


def _drive(r: Path, env: dict, wd: Path, *plans: str) -> str:
    """Start background.sh and wait for its chain to end; its log."""
    out = subprocess.run(["leaderboards/background.sh", "one", str(wd), *plans], cwd=r, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    log = wd / "background.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if log.exists() and "saver done" in log.read_text().split("background run")[-1]:
            return log.read_text()
        time.sleep(0.5)
    raise AssertionError(f"the background run did not end: {log.read_text() if log.exists() else 'no log'}")


def _records(state: Path) -> dict[tuple, dict]:
    """The state's records by (model, evaluation) key."""
    out = {}
    for line in (state / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out[rec["config_hash"], rec["eval_hash"]] = rec
    return out


def test_state_is_committed_and_a_new_workdir_resumes_from_it(repo, tmp_path):
    r, env = repo
    wd = tmp_path / "wd"
    log = _drive(r, env, wd, "one", "two")
    assert "one exited with 0" in log and "two exited with 0" in log
    subjects = subprocess.run(["git", "log", "--format=%s"], cwd=r, capture_output=True, text=True).stdout
    assert "PARTIAL: one campaign state (4 records" in subjects  # erm and mixup, clean and pgd10
    # the commit holds the state alone, not the rest of the working tree
    (r / "leaderboards" / "stray.txt").write_text("not for the state commit")
    state = r / "leaderboards" / "one-state"
    committed = subprocess.run(["git", "ls-files", "leaderboards/one-state"], cwd=r, capture_output=True,
                               text=True).stdout.split()
    assert "leaderboards/one-state/results.jsonl" in committed
    assert {"leaderboards/one-state/campaign-one.jsonl", "leaderboards/one-state/campaign-two.jsonl"} <= set(committed)
    assert sum(f.endswith("weights.safetensors") for f in committed) == 2
    before = _records(state)
    assert len(before) == 4

    # a new machine: the workdir is gone; the same command loads the committed state and evaluates nothing again
    shutil.rmtree(wd)
    typo = subprocess.run(["leaderboards/background.sh", "one", str(wd), "three"], cwd=r, env=env,
                          capture_output=True, text=True)  # every plan is checked before anything starts
    assert typo.returncode == 2 and "no plan leaderboards/three.toml" in typo.stderr and not wd.exists()
    log = _drive(r, env, wd, "one", "two")
    assert "start two" in log
    campaign = (wd / "campaign.log").read_text()
    assert "campaign two: 0 cell(s) run, 4 already in the store" in campaign.replace("\n", " ")
    after = _records(state)
    assert after.keys() == before.keys() and all(after[k]["robust_acc"] == before[k]["robust_acc"] for k in after)
    assert "stray.txt" not in subprocess.run(["git", "show", "--stat", "HEAD"], cwd=r, capture_output=True,
                                             text=True).stdout


def test_a_second_driver_on_the_same_workdir_is_refused(repo, tmp_path):
    r, env = repo
    wd = tmp_path / "wd"
    first = subprocess.run(["leaderboards/background.sh", "one", str(wd), "two"], cwd=r, env=env,
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    try:
        second = subprocess.run(["leaderboards/background.sh", "one", str(wd), "two"], cwd=r, env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "already driving" in second.stderr
    finally:
        pid = int((wd / "background.pid").read_text())
        subprocess.run(["kill", "--", f"-{pid}"], check=False)  # the whole group: driver, saver, campaign
    time.sleep(1)
    assert subprocess.run(["pgrep", "-f", f"workdir {wd}"], capture_output=True).returncode == 1  # none left


def test_paused_stops_the_campaign_on_its_workdir_for_the_command_and_resumes_it_whatever_the_exit(tmp_path):
    """leaderboards/paused.sh WORKDIR CMD: the `bench campaign run` on that workdir is stopped (state T) while CMD
    runs and running again afterwards, also when CMD fails (its status is passed on); a campaign on another workdir
    is left alone; each stop and resume is logged in WORKDIR/pauses.log."""
    wd, other = tmp_path / "wd", tmp_path / "wd-other"

    def fake_campaign(workdir: Path) -> subprocess.Popen:  # a process that pgrep sees as the campaign's
        return subprocess.Popen(["bash", "-c", f'exec -a "bench campaign run plan.toml --workdir {workdir}" sleep 60'])

    def state(pid: int) -> str:
        return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()

    mine, theirs = fake_campaign(wd), fake_campaign(other)
    try:
        time.sleep(0.3)
        script = str(ROOT / "leaderboards" / "paused.sh")
        probe = f'ps -o stat= -p {mine.pid}; ps -o stat= -p {theirs.pid}; exit 3'
        done = subprocess.run([script, str(wd), "bash", "-c", probe], capture_output=True, text=True, timeout=60)
        during_mine, during_theirs = done.stdout.split()
        assert done.returncode == 3 and during_mine.startswith("T") and not during_theirs.startswith("T")
        assert not state(mine.pid).startswith("T")
        log = (wd / "pauses.log").read_text().splitlines()
        assert [line.split()[1:3] for line in log] == [["STOP", str(mine.pid)], ["CONT", str(mine.pid)]]
        assert not (other / "pauses.log").exists()
    finally:
        for p in (mine, theirs):
            p.kill()
            p.wait()


def test_a_state_save_without_bench_on_path_stops_before_copying_anything(repo, tmp_path):
    """Run by hand outside the virtualenv, `save` had copied the weights and then stopped at `bench export`
    ("bench: command not found"), leaving the state's weights newer than its records; it now refuses first."""
    r, env = repo
    wd = tmp_path / "wd"
    (wd / "models" / "k").mkdir(parents=True)
    (wd / "models" / "k" / "weights.safetensors").write_bytes(b"w")
    (wd / "models" / "k" / "meta.json").write_text("{}")
    bare = {**env, "PATH": os.pathsep.join(p for p in ("/usr/bin", "/bin") if Path(p).is_dir())}
    if shutil.which("bench", path=bare["PATH"]):
        pytest.skip("a bench on the system PATH")
    out = subprocess.run(["bash", "leaderboards/campaign_state.sh", "save", "one", str(wd)], cwd=r, env=bare,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "bench is not on PATH" in out.stderr, out.stderr
    assert not (r / "leaderboards" / "one-state").exists()
