"""Run by test_metrics_ddp_run.py as ``python metrics_ddp_job.py OUT_DIR CACHE_DIR``: a one-epoch trainer=ddp_sim
run with metrics=classifier (Lightning re-launches this script for rank 1); each rank saves what its metrics
callback holds after the epoch-end measurement."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from lightning.pytorch import seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hydra_compose import compose_train  # noqa: E402

from parti_exp.builders import build_callbacks, build_datamodule, build_module, build_trainer  # noqa: E402
from parti_exp.metrics.image_quality import ClassifierMetrics  # noqa: E402

NUM_FAKE = 101  # odd: the ranks generate 51 and 50 images


def main(out_dir: Path, cache_dir: Path) -> None:
    cfg = compose_train(
        out_dir, "trainer=ddp_sim", "metrics=classifier", f"metrics.cache_dir={cache_dir}",
        f"metrics.num_fake={NUM_FAKE}", "metrics.batch_size=64", "metrics.every_n_epochs=1",
        "metrics.num_real_knn=1000", "metrics.kid_subset_size=50", "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
    )
    seed_everything(cfg.seed)  # the same generator in every run of this job, as python -m parti_exp.train seeds
    callbacks = build_callbacks(cfg)
    trainer = build_trainer(cfg, callbacks, [])
    trainer.fit(build_module(cfg), datamodule=build_datamodule(cfg))
    (metrics,) = [callback for callback in callbacks if isinstance(callback, ClassifierMetrics)]
    logged = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    state = {"real": metrics.metrics.prdc.real_features.cpu(), "shares": metrics.class_shares, "logged": logged}
    torch.save(state, out_dir / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
