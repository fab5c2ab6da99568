"""The VAE-fidelity axis: the vae-psnr metric (a known answer: PSNR of the reconstruction error; refused without a
VAE) and the fidelity view (one row per VAE, cells matched by VAE and lambda_MI, the table and the figure)."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import varmixup_bench as bench
from varmixup_bench.core.errors import AttackRefused, BenchError


def test_vae_psnr_is_the_psnr_of_the_reconstruction_error_with_an_interval_around_it(tmp_path, digits):
    from varmixup_bench.defenses.latent import get_vae, reconstruction_error

    d = bench.train("varerm", digits, workdir=tmp_path, epochs=1, show_progress=False, vae_arch="conv",
                    vae_latent_channels=4, vae_latent_stride=2, vae_epochs=2)
    out = bench.evaluate(d, "vae-psnr", record=False, show_progress=False)
    vae = get_vae(d.info["context"], False)
    mse = reconstruction_error(vae, digits.test.x, d.device)
    assert out["metric"] == "psnr_db" and out["value"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-6)
    lo, hi = out["details"]["psnr_ci"]
    assert lo < out["value"] < hi and hi - lo < 2
    assert out["details"]["latent_shape"] == [4, 4, 4] and out["details"]["vae_epochs"] == 2
    assert len(out["details"]["psnr_by_epoch"]) == 2 and out["details"]["vae_train_seconds"] > 0
    erm = bench.train("erm", digits, workdir=tmp_path, epochs=1, show_progress=False)
    with pytest.raises(AttackRefused, match="needs a Var"):
        bench.evaluate(erm, "vae-psnr", record=False, show_progress=False)


def _record(defense, attack, vae, acc, lam=None, value=None, worst=None, latent=(8, 16, 16)):
    r = {"dataset": "d", "preset": "cifar-regime", "model": "fast-cnn-half", "seed": 0, "defense": defense, "attack": attack, "timestamp": "t", "n_examples": 1000,
         "train_config": json.dumps({"recipe_config": {"vae": {**vae, "seed": 0}}}),
         "inference_config": json.dumps({"lambda_mi": lam} if lam is not None else {}),
         "clean_acc": acc, "clean_acc_ci_low": acc - 3, "clean_acc_ci_high": acc + 3,
         "robust_acc": acc, "robust_acc_ci_low": acc - 3, "robust_acc_ci_high": acc + 3}
    if worst is not None:
        r.update(robust_acc_worst=worst, robust_acc_worst_ci_low=worst - 3, robust_acc_worst_ci_high=worst + 3)
    if value is not None:
        r.update(metric="psnr_db", value=value, details=json.dumps({"psnr_ci": [value - .1, value + .1],
                                                                     "latent_shape": list(latent), "vae_epochs": 10,
                                                                     "vae_train_seconds": 1500.0}))
    return r


def test_fidelity_rows_match_cells_by_vae_and_lambda_and_write_table_and_figure(tmp_path):
    from varmixup_bench.views.fidelity import COLUMNS, fidelity_rows
    from varmixup_bench.views.plots import plot

    good = {"arch": "conv", "latent_stride": 2, "latent_channels": 8, "width": 32, "epochs": 10, "adversarial": False}
    flat = {"arch": "flat", "latent_dim": 64, "epochs": 10, "adversarial": False}
    recs = [_record("varerm", "vae-psnr", good, 87.0, value=33.9), _record("varerm", "clean", good, 87.0),
            _record("varmixup+varmi", "adaptive-pgd10", good, 20.0, worst=12.0),
            _record("varerm+varmi", "clean", good, 80.0, lam=0.5),  # not the own-domain cell: lambda 0.5
            _record("varerm+varmi", "clean", good, 86.5, lam=1.0),
            _record("varerm", "vae-psnr", flat, 66.0, value=20.5, latent=(64,)), _record("varerm", "clean", flat, 66.0),
            _record("varerm", "clean", {**flat, "adversarial": True}, 10.0),  # adversarial VAEs are not the axis
            _record("varmixup+varmi", "clean", good, 70.0, lam=0.5),  # the preset's lambda_MI: the row's cell
            _record("varmixup+varmi", "clean", good, 99.0, lam=0.3),  # a lambda sweep's cell: not the row's
            {**_record("varerm", "clean", good, 50.0), "preset": "quick"},  # another run: another row, no PSNR
            _record("erm", "clean", {}, 88.0)]
    rows = fidelity_rows(recs)
    assert [r["psnr_db"] for r in rows] == [20.5, 33.9]
    lossy, faithful = rows
    assert lossy["varerm_clean"] == 66.0 and lossy["own_domain"] == "" and lossy["latent"] == "64"
    assert faithful["own_domain"] == 86.5 and faithful["varmi_adaptive_pgd10_worst"] == 12.0
    assert faithful["varmi_clean"] == 70.0 and faithful["varerm_clean"] == 87.0
    assert faithful["latent"] == "16x16x8" and faithful["train_seconds"] == 1500.0 and faithful["epochs"] == 10
    path = plot(recs, "vae-fidelity", tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(tmp_path / "f.csv")
    assert list(table.columns) == COLUMNS and list(table["psnr_db"]) == [20.5, 33.9]
    with pytest.raises(BenchError, match="no vae-psnr records"):
        plot(recs[1:5], "vae-fidelity", tmp_path / "g.png")
