"""python -m parti_exp.train [overrides]: train the configured model on the configured data."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Sequence

import hydra
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer, seed_everything
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import build_callbacks, build_datamodule, build_loggers, build_module, build_trainer
from parti_exp.callbacks.preemption import Preempted
from parti_exp.runtime.checkpoints import check_resumable, read_checkpoint, resolve_ckpt_path
from parti_exp.runtime.config_checks import check_train_config
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.hydra_ddp import hydra_job_for_ddp
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.key_suggestions import run_with_key_suggestions
from parti_exp.runtime.loggers import close_loggers, log_config, resumed_log_position
from parti_exp.runtime.lost_worker import lost_worker_error
from parti_exp.runtime.missing_inputs import MissingInputs
from parti_exp.runtime.trust import checkpoints_trusted, trusting_checkpoints
from parti_exp.runtime.writable_dirs import check_writable_dirs

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run built and measured: the final callback metrics (floats) and the live objects."""

    metrics: dict[str, float]
    datamodule: LightningDataModule
    module: LightningModule
    trainer: Trainer


def train(cfg: DictConfig, extra_callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Fit as the command line does. ``extra_callbacks`` join those of the config (tests record with them). A run
    stopped by a preemption signal returns what it had, after saving and reporting its checkpoint."""
    check_train_config(cfg)
    # Checkpoints read while training (the resume checkpoint, model.tokenizer_ckpt) load as data unless the user
    # typed trust_checkpoint=true.
    with trusting_checkpoints(cfg.get("trust_checkpoint", False)):
        # Each input is checked as the object needing it is built; a missing one is reported with the others.
        missing = MissingInputs()
        missing.check(check_writable_dirs, cfg)
        ckpt_path = missing.check(resolve_ckpt_path, cfg.get("ckpt_path"), cfg.paths.output_dir)
        seed_everything(cfg.seed, workers=True)
        datamodule = build_datamodule(cfg)
        missing.check(datamodule.check_inputs)
        module = missing.check(build_module, cfg)  # model.tokenizer_ckpt
        callbacks = missing.check(build_callbacks, cfg)  # the metrics' weights
        missing.raise_if_any()
        resumed = None
        if ckpt_path is not None:
            check_resumable(ckpt_path, cfg)
            resumed = resumed_log_position(read_checkpoint(ckpt_path))
        loggers = build_loggers(cfg, resumed)
        trainer = build_trainer(cfg, [*callbacks, *extra_callbacks], loggers)
        log_config(loggers, cfg)
        with warnings.catch_warnings():
            if resumed is not None:
                # A resumed run writes into the directory of its checkpoints: Lightning's warning that the directory
                # is not empty is about a fresh run.
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
                # The data modules' samplers resume mid-epoch themselves (EpochShardSampler.resume_at).
                warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before")
            try:
                # Lightning's own resume load: weights only, as ours (our CheckpointIO loads it through the same
                # loader).
                trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=not checkpoints_trusted())
            except Preempted as preempted:
                log.warning("%s", preempted)
            except RuntimeError as error:
                lost = lost_worker_error(error, cfg.paths.output_dir, trainer.world_size)
                if lost is None:
                    raise
                raise lost from error
            finally:
                close_loggers(loggers)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return TrainResult(metrics, datamodule, module, trainer)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    quiet_library_noise()
    with job_log(), hydra_job_for_ddp():
        log.info("run directory: %s", cfg.paths.output_dir)
        result = train(cfg)
        log.info("run written to %s", cfg.paths.output_dir)
    # Sweepers (Optuna) minimise/maximise what main returns.
    return result.metrics.get(cfg.optimized_metric) if cfg.get("optimized_metric") else None


if __name__ == "__main__":
    run_with_key_suggestions(main, "train")
