"""``curves.png`` at the end of a run: every logged ``train/*`` scalar against the G step."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only


class LossCurves(Callback):
    def __init__(
        self, path: str, keys: tuple[str, ...] = ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake")
    ) -> None:
        self.path = Path(path)
        self.keys = tuple(keys)
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        # Sample at the logging cadence: reading a CUDA scalar every step would synchronise the device.
        if (batch_idx + 1) % max(trainer.log_every_n_steps, 1) and not trainer.fast_dev_run:
            return
        metrics = trainer.callback_metrics
        for key in self.keys:
            if key in metrics:
                self.history[key].append((pl_module.g_step, float(metrics[key])))

    @rank_zero_only
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.history:
            return
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for key, points in self.history.items():
            steps, values = zip(*points)
            ax = axes[0] if key.endswith("_loss") else axes[1]
            ax.plot(steps, values, label=key.removeprefix("train/"), linewidth=1)
        axes[0].set_title("losses")
        axes[1].set_title("mean D logit")
        for ax in axes:
            ax.set_xlabel("generator step")
            # A model that logs no D logits (a VQGAN logs only losses) leaves a panel empty: no legend to draw.
            if ax.get_legend_handles_labels()[1]:
                ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.path, dpi=100)
        plt.close(fig)
