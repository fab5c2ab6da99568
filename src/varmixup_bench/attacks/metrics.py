"""Non-adversarial evaluations registered beside the attacks: common corruptions, ECE, local linearity."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from varmixup_bench.attacks.base import ATTACKS, Attack, Measurement, ThreatModel
from varmixup_bench.attacks.corruptions import CORRUPTIONS, corrupt_batch
from varmixup_bench.attacks.evaluation import trial_generator
from varmixup_bench.results.stats import encode_per_image
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.progress import progress
from varmixup_bench.defenses.base import eval_mode


def _correct(defense, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, batch_size: int) -> np.ndarray:
    """Per image, 1 where the defended predictor classifies it correctly."""
    dev = defense.device
    return torch.cat([(defense.predict(x[i : i + batch_size].to(dev), gen) == y[i : i + batch_size].to(dev)).cpu()
                      for i in range(0, len(y), batch_size)]).numpy().astype(np.int64)


def clean_accuracy(defense, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, batch_size: int) -> float:
    """Percent of x the defended predictor classifies correctly (one draw of its randomness per image)."""
    return 100.0 * float(_correct(defense, x, y, gen, batch_size).mean())


def load_official_corruptions(folder: Path, name: str, severity: int, indices: np.ndarray | None = None):
    """Images and labels of one corruption and severity from a CIFAR-10-C / CIFAR-100-C style folder:
    <name>.npy holds 5 blocks of N uint8 HxWxC images (severity 1..5) and labels.npy their labels."""
    folder = Path(folder)
    path, labels_path = folder / f"{name}.npy", folder / "labels.npy"
    if not path.exists() or not labels_path.exists():
        raise BenchError(f"corruptions: expected {path} and {labels_path} (CIFAR-10-C layout)")
    data, labels = np.load(path, mmap_mode="r"), np.load(labels_path)
    n = len(data) // 5
    block = slice((severity - 1) * n, severity * n)
    x, y = np.asarray(data[block]), np.asarray(labels[block])
    if indices is not None:
        x, y = x[indices], y[indices]
    xt = torch.from_numpy(x.astype(np.float32)).div_(255.0)  # one copy, writable (the file is memory-mapped)
    xt = xt.unsqueeze(1) if xt.ndim == 3 else xt.permute(0, 3, 1, 2)
    return xt.contiguous(), torch.from_numpy(y.astype(np.int64))


@ATTACKS.register("corruptions", help="15 common corruptions x 5 severities (CIFAR-C parameters or --corruptions-dir)")
class Corruptions(Measurement):
    """Mean accuracy of the defended predictor over 15 corruptions x 5 severities; the record's `details`
    holds the per-corruption, per-severity accuracies and its `per_image` how many of the 75 conditions each
    image is classified correctly under (so that two predictors compare paired on the same images)."""

    name = "corruptions"
    kind = "corruption"

    def __init__(self, eps: float = 0.0, step: float | None = None, settings: Any = None) -> None:
        super().__init__(eps, step, settings)
        self.folder = self.settings.corruptions_dir
        self.subset = self.settings.corruption_subset

    def config(self) -> dict:
        return {"source": str(self.folder) if self.folder else "generated (CIFAR-C parameters)", "subset": self.subset,
                "subset_rule": "stratified", "subset_seed": int(self.settings.subset_seed)}

    def evaluate(self, defense, split, *, trials: int, seed: int, batch_size: int, show_progress: bool = True):
        from varmixup_bench.training.data import stratified_indices

        seed_subset = int(self.settings.subset_seed)
        sel = torch.as_tensor(stratified_indices(split.y, self.subset or len(split.y), seed_subset, "corruption_subset"))
        x, y = split.x[sel], split.y[sel]
        names = sorted(CORRUPTIONS)
        details = {n: [[] for _ in range(5)] for n in names}
        out: dict[str, Any] = {"clean": [], "robust": [], "n": len(y)}
        clean_count, robust_count = np.zeros(len(y), np.int64), np.zeros(len(y), np.int64)
        with eval_mode(*defense.networks()), progress(show_progress) as bar:
            task = bar.add_task(f"corruptions on {defense.spec}", total=trials * 75, info="15 x 5")
            for t in range(trials):
                trial_seed, gen = trial_generator(seed, t)
                ok = _correct(defense, x, y, gen, batch_size)
                clean_count += ok
                out["clean"].append(100.0 * float(ok.mean()))
                accs = []
                for n in names:
                    for sev in range(1, 6):
                        if self.folder:
                            # the official file holds the full test set: take exactly the evaluated images
                            xc, yc = load_official_corruptions(self.folder, n, sev, split.index[sel].numpy())
                        else:
                            xc, yc = corrupt_batch(x, n, sev, trial_seed), y
                        ok = _correct(defense, xc, yc, gen, batch_size)
                        robust_count += ok
                        acc = 100.0 * float(ok.mean())
                        details[n][sev - 1].append(acc)
                        accs.append(acc)
                        bar.advance(task)
                out["robust"].append(float(np.mean(accs)))
        out["details"] = {n: [float(np.mean(v)) for v in sev] for n, sev in details.items()}
        out["per_image"] = encode_per_image(split.index[sel].numpy(), clean_count, robust_count, trials,
                                            conditions=len(names) * 5)
        return out


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15):
    """ECE (percent) with n_bins equal-width confidence bins, and per-bin (confidence, accuracy, count)."""
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    ece, bins = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        count = int(mask.sum())
        if count:
            c, a = float(conf[mask].mean()), float(correct[mask].mean())
            ece += count / len(labels) * abs(a - c)
            bins.append((c, a, count))
        else:
            bins.append((float((lo + hi) / 2), float("nan"), 0))
    return 100.0 * ece, bins


def reliability_diagram(bins, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from varmixup_bench.core.atomic import atomic_write

    n = len(bins)
    centers = (np.arange(n) + 0.5) / n
    acc = [b[1] if b[2] else 0.0 for b in bins]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.bar(centers, acc, width=1 / n, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set(xlabel="confidence", ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return Path(path)


@ATTACKS.register("ece", help="expected calibration error (15 bins) of the defended predictor + reliability PNG")
class ECE(Measurement):
    name = "ece"
    kind = "metric"

    def config(self) -> dict:
        return {"bins": 15}

    def evaluate(self, defense, split, *, trials: int, seed: int, batch_size: int, show_progress: bool = True):
        values, accs, last_bins = [], [], None
        dev = defense.device
        correct, confidence = np.zeros(len(split), np.int64), np.zeros(len(split))
        by_trial: dict[str, np.ndarray] = {}  # a randomised predictor's trials, each its own ECE (stats.ece_trials)
        for t in range(trials):
            _, gen = trial_generator(seed, t)
            with eval_mode(*defense.networks()):
                probs = torch.cat([defense.predict_proba(split.x[i : i + batch_size].to(dev), gen).cpu()
                                   for i in range(0, len(split), batch_size)])
            ece, last_bins = expected_calibration_error(probs, split.y)
            values.append(ece)
            ok = (probs.argmax(1) == split.y).numpy()
            accs.append(100.0 * float(ok.mean()))
            correct += ok
            conf = probs.max(1).values.double().numpy()
            confidence += conf / trials
            if trials > 1 and defense.stochastic:
                by_trial.update({f"confidence@{t}": conf, f"correct@{t}": ok.astype(np.float64)})
        out = {"clean": accs, "robust": accs, "value": float(np.mean(values)), "metric": "ece_percent",
               # per image: correct trials and mean confidence, for paired tests of ECE (stats.compare_values);
               # a randomised predictor's value is the mean of its trials' ECEs, which the mean confidence cannot
               # give back: each trial's confidences and outcomes are kept as well
               "per_image": encode_per_image(split.index.numpy(), correct, correct, trials,
                                             values={"confidence": confidence, **by_trial})}
        workdir = defense.info.get("workdir")
        if workdir is not None:
            path = Path(workdir) / "figures" / f"reliability-{defense.spec.replace('+', '_')}-{defense.info['config_hash']}.png"
            out["details"] = {"figure": str(reliability_diagram(last_bins, path, f"{defense.spec}: ECE {out['value']:.2f}%"))}
        return out


def local_linearity(model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 10) -> torch.Tensor:
    """Per-example gamma(eps) = max_{||d||_inf <= eps} |l(x + d) - l(x) - d . grad l(x)| (Qin et al. 2019),
    l the cross-entropy of F_w, maximised by sign-gradient ascent from a random start in the eps-ball."""
    if eps == 0:
        return torch.zeros(len(y))
    x = x.clone().requires_grad_(True)
    loss0 = F.cross_entropy(model(x), y, reduction="none")
    (g,) = torch.autograd.grad(loss0.sum(), x)
    loss0, g, x = loss0.detach(), g.detach(), x.detach()

    def gap(d: torch.Tensor) -> torch.Tensor:
        return (F.cross_entropy(model(x + d), y, reduction="none") - loss0 - (d * g).flatten(1).sum(1)).abs()

    d = torch.empty_like(x).uniform_(-eps, eps)
    d = (x + d).clamp(0, 1) - x
    best = gap(d).detach()
    for _ in range(steps):
        d.requires_grad_(True)
        (gd,) = torch.autograd.grad(gap(d).sum(), d)
        d = (d.detach() + eps / 4 * gd.sign()).clamp(-eps, eps)
        d = (x + d).clamp(0, 1) - x
        best = torch.maximum(best, gap(d).detach())
    return best


@ATTACKS.register("linearity", help="local linearity error gamma(eps) of F_w (Qin et al.), one record per eps")
class Linearity(Attack):
    name = "linearity"
    kind = "metric"
    uses_step = False  # its inner ascent uses eps/4, recorded in config()

    def config(self) -> dict:
        return {"eps": self.eps, "steps": 10}

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        return ThreatModel.NONE

    def perturb(self, model, x, y, targets=None):
        return x

    def evaluate(self, defense, split, *, trials: int, seed: int, batch_size: int, show_progress: bool = True):
        dev, values = defense.device, []
        per_image = np.zeros(len(split))
        with eval_mode(*defense.networks()):
            for t in range(trials):
                trial_seed, _ = trial_generator(seed, t)
                with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                    torch.manual_seed(trial_seed)
                    gam = torch.cat([local_linearity(defense.classifier, split.x[i : i + batch_size].to(dev),
                                                     split.y[i : i + batch_size].to(dev), self.eps).cpu()
                                     for i in range(0, len(split), batch_size)])
                values.append(float(gam.mean()))
                per_image += gam.double().numpy() / trials
        ok = _correct(defense, split.x, split.y, torch.Generator().manual_seed(seed), batch_size)
        acc = 100.0 * float(ok.mean())
        return {"clean": [acc], "robust": [acc], "value": float(np.mean(values)), "metric": "local_linearity",
                "per_image": encode_per_image(split.index.numpy(), ok, ok, 1, values={"gamma": per_image})}


def per_image_mse(vae, x: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    """Each image's pixel-mean squared error between it and its reconstruction from the encoder mean."""
    with torch.no_grad():
        return torch.cat([(vae.reconstruct(xb := x[i : i + batch_size].to(device)) - xb).pow(2).flatten(1).mean(1).cpu()
                          for i in range(0, len(x), batch_size)])


@ATTACKS.register("vae-psnr", help="test PSNR of a Var* defense's MMD-VAE (reconstructions from encoder means), "
                  "with its 95 % interval and the VAE's training time: the VAE-fidelity axis")
class VaePSNR(Measurement):
    """PSNR = 10 log10(1 / MSE) of the test images' mean pixel MSE; the interval is the t interval of the per-image
    MSE mapped through the same function. The record's accuracy is the defense's clean accuracy."""

    name = "vae-psnr"
    kind = "metric"

    def config(self) -> dict:
        return {"reconstruction": "decode(mu(x))"}

    def evaluate(self, defense, split, *, trials: int, seed: int, batch_size: int, show_progress: bool = True):
        from scipy import stats

        from varmixup_bench.core.errors import AttackRefused
        from varmixup_bench.defenses.latent import get_vae, psnr_db

        owner = next((p for p in (defense.recipe, defense.rule) if hasattr(p, "adversarial_vae")), None)
        if owner is None or "context" not in defense.info:
            raise AttackRefused(f"vae-psnr needs a Var* defense (a recipe or rule with an MMD-VAE); "
                                f"{defense.spec} has none")
        vae = get_vae(defense.info["context"], owner.adversarial_vae, train_if_missing=False)
        mse = per_image_mse(vae, split.x, defense.device, batch_size).double().numpy()
        mean, half = float(mse.mean()), float(stats.t.ppf(0.975, len(mse) - 1) * mse.std(ddof=1) / np.sqrt(len(mse)))
        hist = vae.meta.get("history", [])
        with torch.no_grad():
            latent = list(vae.encode_mean(split.x[:1].to(defense.device)).shape[1:])
        acc = clean_accuracy(defense, split.x, split.y, torch.Generator().manual_seed(seed), batch_size)
        details = {"mse": mean, "psnr_ci": [psnr_db(mean + half), psnr_db(max(mean - half, 1e-12))],
                   "vae_key": vae.key, "latent_shape": latent, "vae_epochs": len(hist),
                   "vae_train_seconds": vae.meta.get("seconds"),
                   "psnr_by_epoch": [round(h["test_psnr_db"], 3) for h in hist if "test_psnr_db" in h]}
        return {"clean": [acc], "robust": [acc], "value": psnr_db(mean), "metric": "psnr_db", "details": details}
