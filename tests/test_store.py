"""The SQLite results store: torn legacy files, damaged databases, SIGKILL mid-write, concurrent writers, JSONL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.stats import decode_per_image, encode_per_image
from varmixup_bench.results.store import ResultStore, pack_per_image, unpack_per_image
from tests_cli_helper import bench_cli

BENCH = [sys.executable, "-m", "varmixup_bench.cli"]


def _record(i: int, n: int = 300) -> dict:
    rng = np.random.default_rng(i)
    clean, robust = rng.integers(0, 2, n), rng.integers(0, 2, n)
    return {"dataset": "d", "defense": "erm", "attack": f"pgd{i}", "eps": 8 / 255, "eval_hash": f"h{i}",
            "clean_acc": 100 * clean.mean(), "robust_acc": 100 * robust.mean(), "n_examples": n,
            "timestamp": f"2026-11-30T00:00:{i % 60:02d}+00:00", "seq": i,
            "per_image": encode_per_image(np.arange(n), clean, robust, 1)}


def test_a_record_after_a_torn_legacy_line_is_kept_and_the_torn_line_is_reported(tmp_path, capsys):
    """The user's loss: results.jsonl with its last line cut by a crash, then a new run's record. The old store
    wrote the record onto the end of the torn line, where no reader parsed it; now the legacy file is imported
    once (every intact line), the torn line is quarantined with a warning that names the file, and the new
    record is stored in the database."""
    lines = [json.dumps(_record(i)) for i in range(3)]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n" + lines[0][:-7])  # 7 bytes cut off a 4th line
    store = ResultStore(tmp_path)
    store.append(_record(99))
    err = capsys.readouterr().err
    assert [r["seq"] for r in store.records()] == [0, 1, 2, 99]
    assert "results.quarantine.jsonl" in err and "line 4" in err and "do not parse" in err
    quarantined = [json.loads(x) for x in (tmp_path / "results.quarantine.jsonl").read_text().splitlines()]
    assert [q["line"] for q in quarantined] == [4] and quarantined[0]["text"] == lines[0][:-7]
    assert not (tmp_path / "results.jsonl").exists() and (tmp_path / "results.jsonl.imported").exists()
    ResultStore(tmp_path).records()
    assert capsys.readouterr().err == ""  # imported once: a second open says and does nothing


def test_legacy_retired_records_stay_retired(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps(_record(1)) + "\n")
    (tmp_path / "retired.jsonl").write_text(json.dumps({**_record(2), "retired_reason": "attack fixed"}) + "\n")
    store = ResultStore(tmp_path)
    assert [r["seq"] for r in store.records()] == [1]
    assert [(r["seq"], r["retired_reason"]) for r in store.retired()] == [(2, "attack fixed")]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_one_line_with_status_2_naming_the_file_and_the_way_back(tmp_path, damage):
    store = ResultStore(tmp_path)
    store.extend(_record(i) for i in range(50))
    db = store.path
    if damage == "garbage":
        db.write_bytes(b"this is not an sqlite file" * 100)
    else:
        for suffix in ("-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        data = db.read_bytes()
        db.write_bytes(data[:100] + b"\x00" * 50 + data[150:len(data) // 2])
    with pytest.raises(BenchError) as info:
        ResultStore(tmp_path).records()
    msg = str(info.value)
    assert str(db) in msg and "bench import" in msg and "\n" not in msg
    for cmd in (["diagnose"], ["leaderboard", "--format", "csv"], ["export", str(tmp_path / "x.jsonl")]):
        code, out, err = bench_cli(*cmd, "--workdir", str(tmp_path))
        assert code == 2 and "Traceback" not in err and "results.sqlite" in err, (cmd, code, err)


def test_export_import_round_trip_keeps_every_field_and_imports_once(tmp_path):
    a = ResultStore(tmp_path / "a")
    a.extend(_record(i) for i in range(5))
    a.retire(lambda r: r["seq"] == 3, "wrong attack")
    code, out, _ = bench_cli("export", str(tmp_path / "all.jsonl"), "--retired", "--workdir", str(tmp_path / "a"))
    assert code == 0 and "exported 5 record(s)" in out
    code, out, _ = bench_cli("import", str(tmp_path / "all.jsonl"), "--workdir", str(tmp_path / "b"))
    assert code == 0 and "5 new" in out
    b = ResultStore(tmp_path / "b")
    assert b.records() == a.records() and b.retired() == a.retired()
    assert [r["seq"] for r in b.retired()] == [3] and b.retired()[0]["retired_reason"] == "wrong attack"
    code, out, _ = bench_cli("import", str(tmp_path / "all.jsonl"), "--workdir", str(tmp_path / "b"))
    assert code == 0 and "0 new" in out and len(b.records()) == 4


def test_per_image_blob_is_smaller_than_its_text_and_round_trips_exactly():
    rec = _record(7, n=1000)
    blob = pack_per_image(rec["per_image"])
    assert unpack_per_image(blob) == rec["per_image"]
    assert len(blob) < 0.8 * len(json.dumps(rec["per_image"]))
    got = decode_per_image(unpack_per_image(blob))
    want = decode_per_image(rec["per_image"])
    assert all(np.array_equal(got[k], want[k]) for k in ("idx", "clean", "robust"))


_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import _record
    from varmixup_bench.results.store import ResultStore
    store = ResultStore({wd!r})
    for i in range({start}, {start} + 100000):
        store.append(_record(i))
        print(i, flush=True)
""")


def test_sigkill_while_appending_never_loses_an_acknowledged_record_nor_leaves_a_half_one(tmp_path):
    """A writer appends records as fast as it can and is SIGKILLed at six points: every record it reported as
    stored is there, whole (its per-image arrays decode), and nothing else is half there."""
    wd = tmp_path / "wd"
    start, acked = 0, []
    for delay in (0.4, 0.55, 0.7, 0.85, 1.0, 1.3):
        code = _WRITER.format(tests=str(Path(__file__).parent), wd=str(wd), start=start)
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        t0 = time.time()
        while not wd.joinpath("results.sqlite").exists() and time.time() - t0 < 60:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        acked += [int(x) for x in out.split()]
        recs = ResultStore(wd).records()
        seqs = [r["seq"] for r in recs]
        assert set(acked) <= set(seqs)
        assert len(seqs) == len(set(seqs))
        for r in recs:
            assert r == _record(r["seq"])  # whole: every field, and the per-image arrays byte for byte
        start = max(seqs) + 1
    assert len(acked) > 6


def test_four_concurrent_runs_on_one_workdir_keep_all_four_records(tmp_path):
    wd = tmp_path / "wd"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    attacks = ("clean", "fgsm", "pgd10", "pgd(steps=3)")
    procs = [subprocess.Popen(BENCH + ["run", "--defense", "erm", "--attack", a, "--epochs", "1", "--threads", "1",
                                       "--test-subset", "60", "--workdir", str(wd), "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for a in attacks]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted(r["attack"] for r in ResultStore(wd).records()) == sorted(["clean", "fgsm", "pgd10", "pgd(steps=3)"])


def test_sigkill_of_bench_run_at_several_points_keeps_every_earlier_record(tmp_path, private_cache):
    """`bench run` killed while it imports, trains, evaluates or stores: the records stored before survive, none is
    half stored, and after the run that finishes the store holds exactly one record of its evaluation."""
    wd = tmp_path / "wd"
    earlier = [_record(i) for i in range(3)]
    ResultStore(wd).extend(earlier)
    cmd = BENCH + ["run", "--defense", "erm", "--attack", "pgd10", "--epochs", "3", "--threads", "1",
                   "--workdir", str(wd), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for delay in (0.5, 3.0, 6.0):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        recs = ResultStore(wd).records()
        assert recs[:3] == earlier and all(r["attack"] == "pgd10" and "per_image" in r for r in recs[3:])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    recs = ResultStore(wd).records()
    # exactly one: the finishing run stores it, or reuses the one a run killed after storing left (same key)
    assert recs[:3] == earlier and len([r for r in recs if r["attack"] == "pgd10"]) == 1
