"""Loggers whose service goes away mid-run, for test_failing_logger.py (importable as `_target_`s there)."""

from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger


class TensorBoardDiskGone(TensorBoardLogger):
    """Every metric write fails, as on a mount that went away."""

    def log_metrics(self, metrics, step=None):
        raise OSError(5, "Input/output error", self.log_dir)


class WandbServerGone(WandbLogger):
    """The run it started with stops accepting metrics (the server went away); a run it is switched to works."""

    def log_metrics(self, metrics, step=None):
        if getattr(self, "dead_run", None) is None:
            self.dead_run = self.experiment
        if self.experiment is self.dead_run:
            raise ConnectionError("HTTPSConnectionPool(host='api.wandb.ai', port=443): Max retries exceeded")
        super().log_metrics(metrics, step)
