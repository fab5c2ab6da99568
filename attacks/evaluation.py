"""Running an attack against a defense: choose the attacked model by threat model, batch, repeat trials."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from attacks.base import Attack, ThreatModel
from bench.progress import progress
from bench.stats import encode_per_image
from defenses.base import Defense, eval_mode


class DefendedModel(nn.Module):
    """The defended predictor as a module returning log-probabilities, with fresh randomness on every call.

    Adaptive attacks differentiate this (through MI mixing, VAE encode/decode and F_w); with n_samples=1 each
    call is one draw of the randomness, and EOT averages gradients over calls (paper eqs. 15-16)."""

    def __init__(self, defense: Defense, generator: torch.Generator, n_samples: int | None = 1) -> None:
        super().__init__()
        self.classifier = defense.classifier  # registered, so .eval() and device detection reach F_w
        self._defense = defense
        self._generator = generator
        self.n_samples = n_samples
        self.stochastic = defense.stochastic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = self._defense.forward(x, self._generator, self.n_samples)
        return probs.clamp_min(1e-12).log()


def trial_generator(seed: int, trial: int) -> tuple[int, torch.Generator]:
    trial_seed = int(np.random.SeedSequence([seed, trial]).generate_state(1)[0])
    return trial_seed, torch.Generator().manual_seed(trial_seed)


def attacked_model(defense: Defense, attack: Attack, generator: torch.Generator) -> nn.Module:
    """F_w for oblivious / white-box / black-box attacks; the whole defended predictor for adaptive ones."""
    if attack.threat_model(defense.stochastic) is ThreatModel.ADAPTIVE:
        return DefendedModel(defense, generator, n_samples=attack.draws_per_call)
    return defense.classifier


def attack_accuracy(
    defense: Defense,
    attack: Attack,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    trials: int,
    seed: int,
    batch_size: int,
    show_progress: bool = True,
    index: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Per-trial clean and robust accuracy (percent) of the defended predictor (and target hit rate), and per
    image how many trials classified it correctly (`per_image`, keyed by the images' test-set `index`)."""
    dev = defense.device
    threat = attack.threat_model(defense.stochastic)
    out: dict[str, Any] = {"clean": [], "robust": [], "n": len(y)}
    clean_count = np.zeros(len(y), dtype=np.int64)
    robust_count = np.zeros(len(y), dtype=np.int64)
    if attack.targeted:
        out["hit"] = []
    n_batches = (len(y) + batch_size - 1) // batch_size
    with eval_mode(defense.classifier), progress(show_progress) as bar:
        task = bar.add_task(f"{attack.name} on {defense.spec}", total=trials * n_batches, info=threat.value)
        for t in range(trials):
            trial_seed, gen = trial_generator(seed, t)
            target = attacked_model(defense, attack, torch.Generator().manual_seed(trial_seed + 1))
            hit = clean_ok = robust_ok = 0
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(trial_seed)
                for i in range(n_batches):
                    sl = slice(i * batch_size, (i + 1) * batch_size)
                    xb, yb = x[sl].to(dev), y[sl].to(dev)
                    targets = attack.choose_targets(defense.classifier, xb, yb)
                    x_adv = attack.perturb(target, xb, yb, targets) if threat is not ThreatModel.NONE else xb
                    check_in_ball(attack, xb, x_adv)
                    ok_clean = (defense.predict(xb, gen) == yb).cpu().numpy()
                    ok_robust = ok_clean
                    if threat is not ThreatModel.NONE:
                        pred_adv = defense.predict(x_adv, gen)
                        ok_robust = (pred_adv == yb).cpu().numpy()
                        if targets is not None:
                            hit += int((pred_adv == targets).sum())
                    clean_count[sl] += ok_clean
                    robust_count[sl] += ok_robust
                    clean_ok, robust_ok = clean_ok + int(ok_clean.sum()), robust_ok + int(ok_robust.sum())
                    bar.advance(task)
            out["clean"].append(100.0 * clean_ok / len(y))
            out["robust"].append(100.0 * robust_ok / len(y))
            if attack.targeted:
                out["hit"].append(100.0 * hit / len(y))
    idx = index.numpy() if index is not None else np.arange(len(y))
    out["per_image"] = encode_per_image(idx, clean_count, robust_count, trials)
    return out


def check_in_ball(attack: Attack, x: torch.Tensor, x_adv: torch.Tensor) -> None:
    """Refuse to report numbers of an attack that left its eps-ball or the [0,1] pixel range."""
    if attack.uses_eps and (x_adv - x).abs().max() > attack.eps + 1e-6:
        raise RuntimeError(f"{attack.name} left the eps-ball; refusing to report its numbers")
    if x_adv.min() < 0 or x_adv.max() > 1:
        raise RuntimeError(f"{attack.name} produced pixels outside [0,1]; refusing to report")
