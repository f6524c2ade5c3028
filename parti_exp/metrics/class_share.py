"""The share of generated images a classifier puts in each class: the most direct mode-collapse alarm on
labelled data (a generator that stopped drawing sevens has a seven share near 0), and a bar chart of it."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric


class ClassShare(Metric):
    """Counts of argmax classes over the generated images; ``compute()`` -> shares summing to 1 (gathered under DDP)."""

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor) -> None:
        self.counts += torch.bincount(logits.argmax(dim=1), minlength=self.num_classes)

    def compute(self) -> torch.Tensor:
        return self.counts.double() / self.counts.sum().clamp_min(1)


def bar_chart(shares: torch.Tensor, title: str) -> torch.Tensor:
    """``shares`` as a bar chart with the uniform share drawn across: a uint8 3 x H x W image for the loggers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # not pyplot: no global figure state, no display needed

    shares = shares.double().cpu().numpy()
    figure = Figure(figsize=(max(4.0, 0.35 * len(shares)), 2.6), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.bar(np.arange(len(shares)), shares, color="tab:blue")
    axes.axhline(1 / len(shares), color="tab:red", linewidth=1, linestyle="--", label="uniform")
    axes.set_xticks(np.arange(len(shares)))
    axes.set_xlabel("class")
    axes.set_ylabel("share of generated")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    canvas.draw()
    return torch.from_numpy(np.asarray(canvas.buffer_rgba())[..., :3].copy()).permute(2, 0, 1)
