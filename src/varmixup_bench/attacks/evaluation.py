"""Running an attack against a defense: choose the attacked model by threat model, batch, repeat trials."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from varmixup_bench.core.norms import ThreatModel
from varmixup_bench.core.progress import progress
from varmixup_bench.results.stats import encode_per_image
from varmixup_bench.defenses.base import Defense, eval_mode

if TYPE_CHECKING:
    from varmixup_bench.attacks.base import Attack


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
    """What the attack differentiates or queries: the attack's own choice (a surrogate, another defense's F_w)
    if it makes one, else F_w for oblivious / white-box / black-box attacks and the whole defended predictor
    for adaptive ones."""
    own = attack.attacked_model(defense, generator)
    if own is not None:
        return own
    if attack.threat_model(defense.stochastic) is ThreatModel.ADAPTIVE:
        return DefendedModel(defense, generator, n_samples=attack.draws_per_call)
    return defense.classifier


def correct_draws(defense: Defense, x: torch.Tensor, y: torch.Tensor, draws: int,
                  generator: torch.Generator) -> torch.Tensor:
    """(draws, B) booleans: whether each of `draws` fresh draws of the defended predictor classifies x correctly."""
    return torch.stack([defense.predict(x, generator) == y for _ in range(draws)])


def _least_robust(defense: Defense, attack: Attack, xb: torch.Tensor, yb: torch.Tensor, candidates,
                  draws: int, generator: torch.Generator) -> torch.Tensor:
    """Per image, the candidate the defended predictor classifies correctly least often over `draws` draws
    (the first such on ties): restarts and attack ensembles keep their worst case, as AutoAttack's
    random-defense fix (fra31/auto-attack #105) keeps the example that survives least often."""
    cands = list(candidates)
    for cand in cands:
        check_in_ball(attack, xb, cand)
    if len(cands) == 1:
        return cands[0]
    best, best_rate = cands[0].clone(), correct_draws(defense, cands[0], yb, draws, generator).float().mean(dim=0)
    for cand in cands[1:]:
        rate = correct_draws(defense, cand, yb, draws, generator).float().mean(dim=0)
        better = rate < best_rate
        best[better] = cand[better]
        best_rate = torch.minimum(best_rate, rate)
    return best


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
    draws: int = 1,
) -> dict[str, Any]:
    """Per-trial clean and robust accuracy (percent) of the defended predictor (and target hit rate), and per
    image how many trials classified it correctly (`per_image`, keyed by the images' test-set `index`).

    Each final adversarial example is classified by `draws` fresh draws of a randomised predictor (1 for a
    deterministic one): `robust` is the mean over draws, `worst` the fraction of images classified correctly
    in every draw. An attack with several candidates per image (restarts, APGD-CE then -DLR) keeps, per
    image, the one classified correctly least often over separate selection draws."""
    dev = defense.device
    threat = attack.threat_model(defense.stochastic)
    draws = max(1, int(draws)) if defense.stochastic else 1
    out: dict[str, Any] = {"clean": [], "robust": [], "n": len(y), "draws": draws}
    clean_count = np.zeros(len(y), dtype=np.int64)
    robust_count = np.zeros(len(y), dtype=np.int64)
    worst_count = np.zeros(len(y), dtype=np.int64)
    if threat is not ThreatModel.NONE:
        out["worst"] = []
    if attack.targeted:
        out["hit"] = []
    n_batches = (len(y) + batch_size - 1) // batch_size
    with eval_mode(*defense.networks()), progress(show_progress) as bar:
        task = bar.add_task(f"{attack.spec} on {defense.spec}", total=trials * n_batches, info=threat.value)
        for t in range(trials):
            trial_seed, gen = trial_generator(seed, t)
            target = attacked_model(defense, attack, torch.Generator().manual_seed(trial_seed + 1))
            select_gen = torch.Generator().manual_seed(trial_seed + 2)  # selection draws, apart from the final ones
            hit = clean_ok = robust_ok = worst_ok = 0
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(trial_seed)
                for i in range(n_batches):
                    sl = slice(i * batch_size, (i + 1) * batch_size)
                    xb, yb = x[sl].to(dev), y[sl].to(dev)
                    targets = attack.choose_targets(defense.classifier, xb, yb)
                    ok_clean = (defense.predict(xb, gen) == yb).cpu().numpy()
                    clean_count[sl] += ok_clean
                    clean_ok += int(ok_clean.sum())
                    if threat is ThreatModel.NONE:
                        robust_count[sl] += ok_clean * draws
                        robust_ok += int(ok_clean.sum())
                    else:
                        cands = attack.candidates(target, xb, yb, targets)
                        x_adv = _least_robust(defense, attack, xb, yb, cands, draws, select_gen)
                        preds = torch.stack([defense.predict(x_adv, gen) for _ in range(draws)])  # (draws, B)
                        ok = (preds == yb).cpu().numpy()
                        robust_count[sl] += ok.sum(axis=0)
                        worst_count[sl] += ok.all(axis=0)
                        robust_ok += int(ok.sum())
                        worst_ok += int(ok.all(axis=0).sum())
                        if targets is not None:
                            hit += int((preds == targets).sum())
                    bar.advance(task)
            n_draw = len(y) * (draws if threat is not ThreatModel.NONE else 1)
            out["clean"].append(100.0 * clean_ok / len(y))
            out["robust"].append(100.0 * robust_ok / n_draw)
            if "worst" in out:
                out["worst"].append(100.0 * worst_ok / len(y))
            if attack.targeted:
                out["hit"].append(100.0 * hit / n_draw)
    idx = index.numpy() if index is not None else np.arange(len(y))
    out["per_image"] = encode_per_image(idx, clean_count, robust_count, trials, draws=draws,
                                        worst_correct=worst_count if "worst" in out else None)
    return out


def check_in_ball(attack: Attack, x: torch.Tensor, x_adv: torch.Tensor) -> None:
    """Refuse to report numbers of an attack that left its eps-ball (in its norm) or the [0,1] pixel range."""
    if attack.uses_eps:
        size = float(attack.norm.distance((x_adv.detach() - x).float()).max())
        if size > attack.eps * (1 + 1e-5) + 1e-6:
            raise RuntimeError(f"{attack.spec} left the {attack.norm.value} eps-ball ({size:.6g} > {attack.eps:.6g}); "
                               "refusing to report its numbers")
    if x_adv.min() < 0 or x_adv.max() > 1:
        raise RuntimeError(f"{attack.name} produced pixels outside [0,1]; refusing to report")
