"""``curves.png`` at the end of a run: what the run logged, against the G step.

The losses share a panel, the mean D logits share one; every other logged scalar (a penalty, ``train/psnr``,
an epoch metric such as ``val/fid_clf`` or ``val/caption_acc``) gets a panel of its own, its scale being its own.
Epoch metrics are placed at the G step they were measured at.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from parti_exp.runtime.schedule import logged_this_step

if TYPE_CHECKING:
    from matplotlib.figure import Figure

History = Mapping[str, list[tuple[int, float]]]
D_LOGITS = ("train/d_real", "train/d_fake")
X_AXIS = "train/g_step"  # logged for the loggers' charts; here it is the x axis of every panel


def panel_of(key: str) -> str:
    """The title of the panel ``key`` is drawn in."""
    if key.startswith("train/") and key.endswith("_loss"):
        return "losses"
    if key in D_LOGITS:
        return "mean D logit"
    return key


def curves_figure(history: History) -> Figure:
    """One panel per group of keys (see ``panel_of``)."""
    from matplotlib.figure import Figure  # the object-oriented API: no pyplot, no display backend

    # The losses and D logits first, as in every run; then the rest in the order first logged.
    panels: dict[str, list[str]] = {"losses": [], "mean D logit": []}
    for key in history:
        panels.setdefault(panel_of(key), []).append(key)
    panels = {title: keys for title, keys in panels.items() if keys}
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(5.5 * ncols, 4 * nrows))
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax, (title, keys) in zip(axes, panels.items()):
        for key in keys:
            steps, values = zip(*history[key])
            # Epoch metrics are a handful of points: markers show where they were measured.
            marker = "o" if key.startswith("val/") else None
            ax.plot(steps, values, label=key.split("/", 1)[-1], linewidth=1, marker=marker, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
        if len(keys) > 1:  # a single curve is named by the panel's title
            ax.legend()
    for ax in axes[len(panels) :]:  # the grid's unused cells
        ax.set_visible(False)
    fig.tight_layout()
    return fig


class LossCurves(Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def _record(self, trainer: Trainer, pl_module: LightningModule, prefix: str) -> None:
        step = pl_module.progress_step  # G steps; a module with one optimizer: its optimizer steps
        for key, value in trainer.callback_metrics.items():
            if key.startswith(prefix) and key != X_AXIS and value.numel() == 1:
                self.history[key].append((step, float(value)))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        # At the logging cadence, where the module logs (reading a CUDA scalar every step would also synchronise)
        if not logged_this_step(trainer):
            return
        self._record(trainer, pl_module, "train/")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After the epoch's hooks have logged: callback_metrics holds this epoch's values.
        if not trainer.sanity_checking:
            self._record(trainer, pl_module, "val/")

    @rank_zero_only
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.history:
            return
        fig = curves_figure(self.history)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.path, dpi=100)
