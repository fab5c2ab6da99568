"""The MI-OL sampling pool: partners drawn uniformly from training examples of classes other than the predicted one."""
from __future__ import annotations

import torch


class OtherLabelPool:
    """Training examples sorted by label; sample(pred) draws, for each input, partners whose label != pred."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None) -> None:
        order = torch.argsort(y, stable=True)
        self.x = x[order]
        self.y = y[order]
        k = int(num_classes if num_classes is not None else int(y.max()) + 1)
        self.counts = torch.bincount(self.y, minlength=k)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        if (self.counts == len(self.y)).any():
            raise ValueError("MI-OL pool needs training examples of at least two classes")
        self._on_device: dict[torch.device, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.y)

    def indices(self, pred: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, B) pool indices; index i of row j has label != pred[i]; uniform over those examples."""
        pred = pred.detach().cpu()
        counts, starts = self.counts[pred], self.starts[pred]
        u = torch.rand((n, len(pred)), generator=generator)
        r = (u * (len(self.y) - counts)).long().clamp_max(len(self.y) - counts - 1)
        return r + counts * (r >= starts).long()

    def data_on(self, device: torch.device) -> torch.Tensor:
        """The pool images on `device`, copied once per device."""
        if device not in self._on_device:
            self._on_device[device] = self.x.to(device)
        return self._on_device[device]

    def sample(self, pred: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, B, ...) partner images on pred's device."""
        idx = self.indices(pred, n, generator).to(pred.device)
        return self.data_on(pred.device)[idx]
