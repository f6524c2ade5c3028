"""python -m parti_exp.evaluate ckpt_path=PATH | real_dir=A fake_dir=B: FID / IS / KID, precision / recall /
density / coverage, printed and in metrics.json; for a model with a likelihood bound (the VAE), also its bits per
dimension on the data's validation split (``bpd``, and ``bpd_iw``: the importance-weighted bound).

python -m parti_exp.evaluate outputs_dir=A targets_dir=B: PSNR and SSIM of each output against the target of the
same file name (``parti_exp.metrics.psnr_ssim``), averaged over the images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from lightning.pytorch.strategies import SingleDeviceStrategy
from omegaconf import DictConfig, OmegaConf

from parti_exp import CONF_DIR
from parti_exp.builders import resolve_device
from parti_exp.errors import ConfigError
from parti_exp.inference.samplers import sampler_for
from parti_exp.metrics.bits_per_dim import held_out_bits_per_dim
from parti_exp.metrics.folder_images import folder_batches, image_files
from parti_exp.metrics.image_quality import ImageQualityMetrics
from parti_exp.metrics.psnr_ssim import folder_psnr_ssim
from parti_exp.models.protocols import BoundsLikelihood, MakesImagesForMetrics
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.trust import trusting_checkpoints


def stored_or_composed(group: str, cfg: DictConfig, stored: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The ``group`` config to evaluate a checkpoint with.

    The checkpoint's own (what it was trained with) plus the keys typed for it on the command line
    (``metrics.num_fake=50000``); the composed one if the group itself was chosen (``metrics=inception``)
    or the checkpoint has none (trained with ``metrics=none``).
    """
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    if any(o.key_or_group == group for o in parsed) or not stored.get(group):
        return cfg[group]
    node = OmegaConf.create(OmegaConf.to_container(stored[group]))
    for override in parsed:
        if not override.key_or_group.startswith(f"{group}."):
            continue
        key = override.key_or_group.removeprefix(f"{group}.")
        if override.is_delete():
            node.pop(key, None)
        else:
            # The composed config already holds the typed value, with its interpolations resolvable.
            OmegaConf.update(node, key, OmegaConf.select(cfg, override.key_or_group), force_add=True)
    return node


def evaluate_checkpoint(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict:
    module, train_cfg = module_from_checkpoint(read_checkpoint(cfg.ckpt_path))
    if not isinstance(module, MakesImagesForMetrics):
        raise ConfigError(f"{cfg.ckpt_path} is a {type(module).__name__} checkpoint, which generates no images to "
                          "measure (model=vqgan reconstructs them)")
    metrics_cfg = stored_or_composed("metrics", cfg, train_cfg, overrides)
    if not metrics_cfg.get("_target_"):
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} was trained with metrics=none: choose the feature space, "
            "metrics=inception or metrics=classifier"
        )
    callback: ImageQualityMetrics = instantiate(metrics_cfg, _convert_="all")
    datamodule = instantiate(stored_or_composed("data", cfg, train_cfg, overrides))
    sampler_for(module, cfg.ckpt_path).prepare_for_metrics(module, datamodule)
    strategy = SingleDeviceStrategy(device=resolve_device(cfg.device))
    module = module.to(strategy.root_device)
    callback.prepare(datamodule, strategy)
    values = callback.measure(module, strategy)
    if isinstance(module, BoundsLikelihood):
        val_images = datamodule.val_set.images
        values.update(held_out_bits_per_dim(module, val_images, callback.batch_size))
        values["bpd_images"] = f"{datamodule.name} val split, {len(val_images)} images"
        values["bpd_meaning"] = module.bpd_meaning
    return {
        **values,
        "num_fake": callback.num_fake,
        "num_real": callback.metrics.num_real,
        "real": f"{datamodule.name} {callback.real_split} split",
        "fake": str(cfg.ckpt_path),
    }


def evaluate_folders(cfg: DictConfig) -> dict:
    callback: ImageQualityMetrics = instantiate(cfg.metrics, _convert_="all")
    datamodule = instantiate(cfg.data) if callback.needs_train_split else None
    device = resolve_device(cfg.device)
    extractor = callback.load_extractor(datamodule, device)
    real, fake = image_files(cfg.real_dir, "real_dir"), image_files(cfg.fake_dir, "fake_dir")
    channels = datamodule.channels if datamodule is not None else 3
    metrics = callback.feature_metrics(extractor, len(real), len(fake)).to(device)
    for files, is_real in ((real, True), (fake, False)):
        for batch in folder_batches(files, callback.batch_size, channels):
            metrics.update(batch.to(device), real=is_real)
    if metrics.prdc is not None:
        # No cache for folders: the kNN subset is drawn from the real features just extracted.
        real_features = metrics.gathered_real_state()["kid_real_features"]
        metrics.prdc.set_real(metrics.prdc.real_state(real_features, callback.num_real_knn))
    return {
        **callback.results(metrics),
        "num_fake": len(fake),
        "num_real": len(real),
        "real": str(cfg.real_dir),
        "fake": str(cfg.fake_dir),
    }


def evaluate(cfg: DictConfig, out_dir: Path, overrides: Sequence[str] = ()) -> dict:
    """Compute the metrics for ``cfg.ckpt_path`` or for ``cfg.real_dir`` vs ``cfg.fake_dir``; write
    ``out_dir/metrics.json`` and return its content. ``overrides``: what was typed on the command line."""
    folders = cfg.real_dir is not None or cfg.fake_dir is not None
    pairs = cfg.get("outputs_dir") is not None or cfg.get("targets_dir") is not None
    chosen = sum([folders, pairs, cfg.ckpt_path is not None])
    incomplete = (folders and (cfg.real_dir is None or cfg.fake_dir is None)) or (
        pairs and (cfg.outputs_dir is None or cfg.targets_dir is None))
    if chosen != 1 or incomplete:
        raise ConfigError(
            "give either ckpt_path=PATH (a training checkpoint), both real_dir=DIR and fake_dir=DIR (image folders), "
            "or both outputs_dir=DIR and targets_dir=DIR (outputs and their targets by file name: PSNR, SSIM); got "
            f"ckpt_path={cfg.ckpt_path}, real_dir={cfg.real_dir}, fake_dir={cfg.fake_dir}, "
            f"outputs_dir={cfg.get('outputs_dir')}, targets_dir={cfg.get('targets_dir')}"
        )
    # The checkpoint and the feature extractor's weights load as data unless the user typed trust_checkpoint=true.
    with trusting_checkpoints(cfg.trust_checkpoint):
        if pairs:
            result = folder_psnr_ssim(cfg.outputs_dir, cfg.targets_dir)
        else:
            result = evaluate_folders(cfg) if folders else evaluate_checkpoint(cfg, overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    with job_log():
        result = evaluate(cfg, out_dir, overrides=hydra_cfg.overrides.task)
    if "num_pairs" in result:
        print(f"{result['outputs']} vs {result['targets']} ({result['num_pairs']} images by file name):")
    else:
        print(f"{result['fake']} ({result['num_fake']} images) vs {result['real']} ({result['num_real']} images):")
    for key, value in result.items():
        if isinstance(value, float):
            print(f"  {key:12s} {value:.6g}")
    print(f"wrote {out_dir / 'metrics.json'}")


if __name__ == "__main__":
    main()
