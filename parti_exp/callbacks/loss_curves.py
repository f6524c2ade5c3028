"""``curves.png`` at the end of a run: what the run logged, against the G step.

The losses share a panel, the mean D logits share one; every other logged scalar (a penalty, ``train/psnr``,
an epoch metric such as ``val/fid_clf`` or ``val/caption_acc``) gets a panel of its own, its scale being its own.

The points are exactly what the run sent to its loggers, each at the G step it was logged at: the callback adds a
logger of its own (``CurveRecorder``) to the trainer's, so an epoch metric measured every 10 epochs is 1 point in 10
epochs, wherever in the epoch's hooks it was logged, and the last measurement is drawn. The history is kept in the
checkpoints, so a resumed run draws the whole run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

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
            # Epoch metrics are a handful of points: markers show where they were measured, lines join them.
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


class CurveRecorder(Logger):
    """A logger that keeps the ``train/`` and ``val/`` scalars it is sent, at ``step_of()`` (the module's G step) of
    the moment they are logged."""

    def __init__(self, history: dict[str, list[tuple[int, float]]], step_of: Callable[[], int]) -> None:
        super().__init__()
        self.history = history
        self.step_of = step_of

    @property
    def name(self) -> str:
        return "curves"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        g_step = self.step_of()
        for key, value in metrics.items():
            if key.startswith(("train/", "val/")) and key != X_AXIS:
                self.history[key].append((g_step, float(value)))


class LossCurves(Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and not any(isinstance(logger, CurveRecorder) for logger in trainer.loggers):
            # G steps; a module with one optimizer: its optimizer steps
            trainer.loggers = [*trainer.loggers, CurveRecorder(self.history, lambda: pl_module.progress_step)]

    def state_dict(self) -> dict[str, torch.Tensor]:
        # (step, value) rows as one float64 tensor per key: compact, and loadable as weights only.
        return {key: torch.tensor(points, dtype=torch.float64).reshape(-1, 2) for key, points in self.history.items()}

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.history.clear()
        for key, points in state_dict.items():
            self.history[key] = [(int(step), float(value)) for step, value in points.tolist()]

    @rank_zero_only
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.history:
            return
        fig = curves_figure(self.history)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.path, dpi=100)
