"""Sample statistics of paper Fig. 5: FID and KID (torchmetrics) between training images and Mixup / VarMixup
samples. Inception weights cannot be downloaded on offline machines, so the feature extractor is either
torchvision's Inception-v3 with weights from a local safetensors file, or any module passed in by the caller."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.core.errors import BenchError


class InceptionFeatures(nn.Module):
    """torchvision Inception-v3 pool features (2048-d) of [0,1] images, resized to 299x299, ImageNet-normalised."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from safetensors.torch import load_file
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        try:
            state = load_file(str(weights))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
            raise BenchError(f"--feature-weights {weights}: not a readable safetensors file ({exc})") from None
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if [m for m in missing if not m.startswith("fc.")] or unexpected:
            raise BenchError(f"--feature-weights {weights}: not torchvision inception_v3 weights "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        net.fc = nn.Identity()
        self.net = net.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.num_features = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if x.max() > 1.5:  # torchmetrics hands uint8-range tensors to custom extractors unless normalize=True
            x = x / 255.0
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)


def sample_sets(recipe, x: torch.Tensor, n: int, seed: int, eta: float) -> dict[str, torch.Tensor]:
    """n Mixup samples and n of the recipe's own (Recipe.training_samples: VarMixup's, adv-VarMixup's, ...) from one
    draw of pairs and lambdas (attacks.kid.draw_pairs, the draw the `kid` evaluation uses), keyed by recipe."""
    from varmixup_bench.attacks.kid import draw_pairs
    from varmixup_bench.defenses.base import RECIPES

    d = draw_pairs(len(x), n, seed, eta)
    xi, xj, lam = x[d["i"]], x[d["j"]], torch.from_numpy(d["lam"]).float()
    out = {"mixup": RECIPES.get("mixup")(recipe.settings).training_samples(xi, xj, lam)}
    own = recipe.training_samples(xi, xj, lam)
    if own is not None and recipe.name != "mixup":
        out[recipe.name] = own.detach().cpu()
    return out


def real_images(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """`n` training images drawn without replacement by `seed`: the real set FID and KID compare against."""
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def fid_kid(real: torch.Tensor, fake: torch.Tensor, features: nn.Module, batch_size: int = 100) -> dict[str, float]:
    """FID and KID (mean, std) between two sets of [0,1] images under the given feature extractor."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    import warnings

    subset = min(len(real), len(fake), 1000)
    fid = FrechetInceptionDistance(feature=features, normalize=True)
    with warnings.catch_warnings():  # KID keeps every feature by design; our sets are at most a few thousand images
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")
        kid = KernelInceptionDistance(feature=features, normalize=True, subset_size=max(2, subset // 2), subsets=20)
    for metric in (fid, kid):
        for imgs, is_real in ((real, True), (fake, False)):
            for k in range(0, len(imgs), batch_size):
                batch = imgs[k : k + batch_size]
                if batch.shape[1] == 1:
                    batch = batch.expand(-1, 3, -1, -1)
                metric.update(batch, real=is_real)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}
