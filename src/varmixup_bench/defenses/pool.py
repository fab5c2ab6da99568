"""The MI-OL sampling pool: for each input, a class drawn uniformly among the classes other than the predicted
one, then an example drawn uniformly from that class (as Pang et al.'s MI-OL reference samples)."""
from __future__ import annotations

import torch


class OtherLabelPool:
    """Training examples sorted by label; sample(pred) draws, for each input, partners whose label != pred.

    Classes are drawn uniformly (not examples): on imbalanced data (SVHN) a large class is no likelier a
    partner than a small one."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None) -> None:
        order = torch.argsort(y, stable=True)
        self.x = x[order]
        self.y = y[order]
        k = int(num_classes if num_classes is not None else int(y.max()) + 1)
        self.counts = torch.bincount(self.y, minlength=k)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        if (self.counts == len(self.y)).any():
            raise ValueError("MI-OL pool needs training examples of at least two classes")
        present = [c for c in range(k) if self.counts[c] > 0]
        others = [[c for c in present if c != p] for p in range(k)]
        width = max(len(o) for o in others)
        # others[p]: the present classes other than p, padded to one width; n_others[p]: how many there are
        self.others = torch.tensor([o + o[:1] * (width - len(o)) for o in others], dtype=torch.long)
        self.n_others = torch.tensor([len(o) for o in others], dtype=torch.long)
        self._on_device: dict = {}

    def __len__(self) -> int:
        return len(self.y)

    def indices(self, pred: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, B) pool indices; index i of row j has label != pred[i]: a class uniform over the other classes,
        then an example uniform within it."""
        pred = pred.detach().cpu()
        u_class = torch.rand((n, len(pred)), generator=generator)
        u_example = torch.rand((n, len(pred)), generator=generator)
        m = self.n_others[pred]
        rank = (u_class * m).long().clamp_max(m - 1)
        cls = self.others[pred.expand(n, -1), rank]
        counts = self.counts[cls]
        return self.starts[cls] + (u_example * counts).long().clamp_max(counts - 1)

    def data_on(self, device: torch.device) -> torch.Tensor:
        """The pool images on `device`, copied once per device."""
        if device not in self._on_device:
            self._on_device[device] = self.x.to(device)
        return self._on_device[device]

    def mean_on(self, device: torch.device) -> torch.Tensor:
        """The mean pool item (1, ...) on `device`, computed once per device."""
        key = ("mean", device)
        if key not in self._on_device:
            self._on_device[key] = self.data_on(device).mean(dim=0, keepdim=True)
        return self._on_device[key]

    def sample(self, pred: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, B, ...) partner images on pred's device."""
        idx = self.indices(pred, n, generator).to(pred.device)
        return self.data_on(pred.device)[idx]
