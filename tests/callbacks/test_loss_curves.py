"""curves.png: a panel per logged group of keys, epoch metrics at the G step they were measured at."""

from lightning.pytorch import Callback

from parti_exp.callbacks.loss_curves import LossCurves, curves_figure
from parti_exp.train import train


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_visible()]


def test_the_figure_has_one_panel_per_group_and_legends_only_where_curves_share_a_panel():
    history = {
        "train/d_loss": [(1, 1.0), (2, 0.9)],
        "train/g_loss": [(1, 0.7), (2, 0.8)],
        "train/d_real": [(1, 0.2), (2, 0.3)],
        "train/d_fake": [(1, -0.2), (2, -0.3)],
        "train/gp": [(1, 0.05), (2, 0.04)],
        "val/fid_clf": [(2, 12.5)],
    }
    fig = curves_figure(history)
    assert titles(fig) == ["losses", "mean D logit", "train/gp", "val/fid_clf"]
    losses, logits, penalty, fid = (ax for ax in fig.axes if ax.get_visible())
    assert [line.get_label() for line in losses.lines] == ["d_loss", "g_loss"]
    assert losses.get_legend() is not None and penalty.get_legend() is None
    assert list(fid.lines[0].get_xdata()) == [2] and list(fid.lines[0].get_ydata()) == [12.5]


def test_a_run_records_its_penalty_and_epoch_metrics(cfg_factory, tmp_path):
    cfg = cfg_factory(
        "model=wgan_gp", "model.n_critic=1", "metrics=classifier", "metrics.num_fake=20", "metrics.every_n_epochs=1",
        "metrics.is_splits=2", "trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.log_every_n_steps=1",
    )
    result = train(cfg)
    curves = next(c for c in result.trainer.callbacks if isinstance(c, LossCurves))
    g_steps = [step for step, _ in curves.history["val/fid_clf"]]
    assert len(g_steps) == 2 and g_steps[0] < g_steps[1] == result.module.g_step  # measured after each epoch
    fig_titles = titles(curves_figure(curves.history))
    assert fig_titles[:2] == ["losses", "mean D logit"]
    assert {"train/gp", "val/fid_clf", "val/is_clf", "val/kid_clf"} <= set(fig_titles)
    assert (tmp_path / "run" / "curves.png").is_file()


class LogsAtTrainEpochEnd(Callback):
    """Logs the epoch number where text-image metrics log theirs: after the validation epoch, at the epoch's end."""

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.log("val/late", float(trainer.current_epoch))


def test_epoch_metrics_are_drawn_where_they_were_measured_and_the_last_one_too(cfg_factory, tmp_path):
    cfg = cfg_factory("metrics=classifier", "metrics.num_fake=20", "metrics.every_n_epochs=2", "metrics.is_splits=2",
                      "trainer.max_epochs=4", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1")
    result = train(cfg, [LogsAtTrainEpochEnd()])
    history = next(c for c in result.trainer.callbacks if isinstance(c, LossCurves)).history
    # Measured after epochs 1 and 3 (2 G steps each): two points, not one per epoch.
    assert [step for step, _ in history["val/fid_clf"]] == [4, 8]
    assert [value for _, value in history["val/late"]] == [0.0, 1.0, 2.0, 3.0]
    fid = next(ax for ax in curves_figure(history).axes if ax.get_title() == "val/fid_clf")
    assert list(fid.lines[0].get_xdata()) == [4, 8]
