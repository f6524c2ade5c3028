"""python -m parti_exp.evaluate ckpt_path=PATH | real_dir=A fake_dir=B: FID / IS / KID, precision / recall /
density / coverage, printed and in metrics.json with the feature space they were measured in; for a model with a
likelihood bound (the VAE), also its bits per dimension on the data's validation split (``bpd``, and ``bpd_iw``: the
importance-weighted bound).

The feature space is the metrics group: ``inception`` (its weights must be at hand), or, offline, ``scorer`` (the
image embeddings of a contrastive scorer trained here, ``scorer_ckpt=``) and ``classifier`` (a digit classifier
trained on labelled data, or the one a run cached, ``classifier_ckpt=``).

python -m parti_exp.evaluate outputs_dir=A targets_dir=B: PSNR and SSIM of each output against the target of the
same file name (``parti_exp.metrics.psnr_ssim``), averaged over the images; no feature space is involved."""

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
from parti_exp.data.base import ImageDataModule
from parti_exp.errors import ConfigError, MissingInputError
from parti_exp.inference.samplers import sampler_for
from parti_exp.metrics.bits_per_dim import held_out_bits_per_dim
from parti_exp.metrics.folder_images import folder_batches, image_files
from parti_exp.metrics.image_quality import ImageQualityMetrics
from parti_exp.metrics.inception import MissingWeightsError
from parti_exp.metrics.psnr_ssim import folder_psnr_ssim
from parti_exp.protocols import BoundsLikelihood, MakesImagesForMetrics
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.key_suggestions import run_with_key_suggestions
from parti_exp.runtime.run_dir import removed_if_failed_empty
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


# The feature spaces evaluate can measure in, and what each needs.
FEATURE_SPACES = (
    "metrics=inception (InceptionV3, the space of published FID/IS/KID: its weights are downloaded, or read from "
    "metrics.weights_path), metrics=scorer scorer_ckpt=<a model=contrastive run on this data> (offline, any images "
    "of the scorer's size), or metrics=classifier (offline, labelled images: classifier_ckpt=<a classifier a "
    "metrics=classifier run cached> or data=<the labelled dataset to train one on>)"
)


def metrics_callback(metrics_cfg: DictConfig, refusal: str) -> ImageQualityMetrics:
    """The metrics of ``metrics_cfg``; ``refusal`` opens the message when it names no feature space (metrics=none)."""
    if not metrics_cfg or not metrics_cfg.get("_target_"):
        raise ConfigError(f"{refusal}: evaluate measures images in a feature space; choose one, {FEATURE_SPACES}")
    try:
        return instantiate(metrics_cfg, _convert_="all")
    except MissingWeightsError as error:
        raise MissingInputError(
            f"{error.problem} Offline, measure in a feature space that needs no download: metrics=scorer "
            "scorer_ckpt=<a model=contrastive run on this data>, or on labelled images metrics=classifier"
        ) from None


def evaluate_checkpoint(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict:
    module, train_cfg = module_from_checkpoint(read_checkpoint(cfg.ckpt_path))
    if not isinstance(module, MakesImagesForMetrics):
        raise ConfigError(f"{cfg.ckpt_path} is a {type(module).__name__} checkpoint, which generates no images to "
                          "measure (model=vqgan reconstructs them)")
    metrics_cfg = stored_or_composed("metrics", cfg, train_cfg, overrides)
    callback = metrics_callback(metrics_cfg, f"ckpt_path={cfg.ckpt_path} was trained with metrics=none")
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
        "feature_space": callback.feature_space(),
        "num_fake": callback.num_fake,
        "num_real": callback.metrics.num_real,
        "real": f"{datamodule.name} {callback.real_split} split",
        "fake": str(cfg.ckpt_path),
    }


def labelled_data(cfg: DictConfig) -> ImageDataModule | None:
    """The data config's module for a feature space trained on it, or None when it names no data (data=folder, the
    default here, without data.path): the feature space then says what it needs."""
    if OmegaConf.is_missing(cfg.data, "path"):
        return None
    return instantiate(cfg.data)


def evaluate_folders(cfg: DictConfig) -> dict:
    callback = metrics_callback(cfg.metrics, "metrics=none")
    # Both folders first: a missing one is named before any network is loaded.
    real, fake = image_files(cfg.real_dir, "real_dir"), image_files(cfg.fake_dir, "fake_dir")
    datamodule = labelled_data(cfg) if callback.needs_train_split else None
    device = resolve_device(cfg.device)
    extractor = callback.load_extractor(datamodule, device)
    channels = callback.folder_channels(datamodule)
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
        "feature_space": callback.feature_space(),
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


def report(result: dict) -> str:
    """What the console shows of ``result``: what was compared with what, in which feature space, and the numbers."""
    if "num_pairs" in result:  # outputs_dir/targets_dir: pixel metrics, no feature space
        lines = [f"{result['outputs']} vs {result['targets']} ({result['num_pairs']} images by file name):"]
    else:
        lines = [f"{result['fake']} ({result['num_fake']} images) vs {result['real']} ({result['num_real']} images), "
                 f"measured in {result['feature_space']}:"]
    lines += [f"  {key:16s} {value:.6g}" for key, value in result.items() if isinstance(value, float)]
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    with removed_if_failed_empty(out_dir, cfg.task_name), job_log():
        result = evaluate(cfg, out_dir, overrides=hydra_cfg.overrides.task)
    print(report(result))
    print(f"wrote {out_dir / 'metrics.json'}")


if __name__ == "__main__":
    run_with_key_suggestions(main, "evaluate")
