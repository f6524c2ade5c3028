"""A training checkpoint as a model folder (``python -m parti_exp.export``; the layout is in
``parti_exp.runtime.model_folder``): the sampling nets' weights in safetensors, the model and data config, the text
tokenizer, the image tokenizer in a folder of its own, samples.png drawn by the family's sampler, and the model card.

The folder is written under a temporary name beside ``out_dir`` and renamed when complete, so a failed export leaves
no half folder, and an existing non-empty ``out_dir`` is refused rather than overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save

from parti_exp.callbacks.config_in_checkpoint import RUN_KEY
from parti_exp.errors import ConfigError, UserError
from parti_exp.inference.model_card import CardFacts, last_logged_metrics, render_card, world_size
from parti_exp.inference.samplers import sampler_for
from parti_exp.protocols import CountsTrainingImages
from parti_exp.runtime.checkpoints import checkpoint_file, module_from_checkpoint, read_checkpoint
from parti_exp.runtime.instantiate import instantiate
from parti_exp.runtime.model_folder import (
    CARD,
    CONFIG,
    SAMPLES,
    SUB_FOLDERS,
    TEXT_TOKENIZER,
    TEXT_TOKENIZER_KEY,
    WEIGHTS,
    WORD_TOKENIZER,
    sampling_state,
)
from parti_exp.runtime.trust import trusting_checkpoints

SCORER = "scorer"
# Sample options that decide what samples.png shows: repeated in the card's sampling command when set.
SAMPLE_OPTIONS = ("n", "seed", "prompts", "truncation", "classes", "n_candidates")


def _save_weights(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    # safetensors refuses tensors that share memory (tied weights) or are views: each is written as its own copy.
    plain = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in tensors.items()}
    # Written by Python rather than safetensors' save_file, which creates the file readable by its owner alone.
    path.write_bytes(save(plain, metadata=metadata))


def write_weights_and_config(module, train_cfg: DictConfig, checkpoint: dict, folder: Path) -> list[str]:
    """``model.safetensors``, ``config.yaml``, the text tokenizer and the sub-folders' nets of ``module`` into
    ``folder``; the files written, relative to it."""
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = OmegaConf.to_container(train_cfg.model, resolve=True)
    data_cfg = OmegaConf.to_container(train_cfg.data, resolve=True)
    state = sampling_state(module)
    written = []
    for sub in SUB_FOLDERS:
        if sub.config_key not in model_cfg:
            continue
        start = f"{sub.module_net}."
        inner = {f"{sub.folder_net}.{name[len(start):]}": state.pop(name) for name in list(state)
                 if name.startswith(start)}
        (folder / sub.name).mkdir()
        _save_weights(inner, folder / sub.name / WEIGHTS, {"format": "pt"})
        net_cfg = yaml.safe_load(model_cfg[sub.net_config_key])
        _write_yaml(folder / sub.name / CONFIG, {"model": {sub.folder_net: net_cfg}, "data": data_cfg})
        model_cfg[sub.config_key] = sub.name  # the reader puts the folder's own path here
        written += [f"{sub.name}/{WEIGHTS}", f"{sub.name}/{CONFIG}"]
    _save_weights(state, folder / WEIGHTS, {"format": "pt", "family": module.family})
    text_settings = model_cfg.get("text_tokenizer")
    if isinstance(text_settings, dict):
        # Paths of the training machine: the tokenizer is the folder's own file, no cache is read on loading.
        text_settings["path"] = TEXT_TOKENIZER if text_settings.get("path") else None
        text_settings["cache_dir"] = None
    _write_yaml(folder / CONFIG, {"model": model_cfg, "data": data_cfg})
    written += [WEIGHTS, CONFIG]
    tokenizer = checkpoint.get(TEXT_TOKENIZER_KEY)
    if tokenizer is not None and tokenizer.get("kind") == "bpe":
        (folder / TEXT_TOKENIZER).write_text(tokenizer["json"], encoding="utf-8")
        written.append(TEXT_TOKENIZER)
    elif tokenizer is not None:
        (folder / WORD_TOKENIZER).write_text(json.dumps(tokenizer, indent=1) + "\n", encoding="utf-8")
        written.append(WORD_TOKENIZER)
    return written


def _write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _data_size(train_cfg: DictConfig) -> int | None:
    """Training images of the run's data, when the data is on this machine (a card written elsewhere says so)."""
    try:
        datamodule = instantiate(train_cfg.data)
        return datamodule.training_images() if isinstance(datamodule, CountsTrainingImages) else None
    except UserError:  # data missing here: the card says the size is unknown
        return None


def _steps(checkpoint: dict) -> str:
    gan = checkpoint.get("gan_steps")
    optimizer_steps = checkpoint.get("global_step")
    if gan:
        return f"{gan['g_step']:,} generator and {gan['d_step']:,} critic updates"
    return f"{optimizer_steps:,} optimizer steps" if optimizer_steps is not None else "not recorded"


def sample_command(cfg: DictConfig, out_dir: Path) -> str:
    """The command that draws samples.png again from the exported folder."""
    parts = ["python -m parti_exp.sample", f"ckpt_path={out_dir}"]
    for key in SAMPLE_OPTIONS:
        value = cfg.get(key)
        if value is None or (key == "n_candidates" and value == 1):
            continue
        if OmegaConf.is_list(value):
            value = json.dumps(OmegaConf.to_container(value), ensure_ascii=False)
            parts.append(f"{key}='{value}'")
        else:
            parts.append(f"{key}={value}")
    for key, value in OmegaConf.to_container(cfg.sampling).items():
        if value is not None:
            parts.append(f"sampling.{key}={value}")
    if cfg.get("scorer_ckpt"):
        parts.append(f"scorer_ckpt={out_dir / SCORER}")
    return " ".join(parts)


def _export_scorer(path: str, folder: Path) -> list[str]:
    checkpoint = read_checkpoint(path, "scorer_ckpt")
    module, train_cfg = module_from_checkpoint(checkpoint)
    return [f"{SCORER}/{name}" for name in write_weights_and_config(module, train_cfg, checkpoint, folder / SCORER)]


def export_model(cfg: DictConfig, device: torch.device) -> Path:
    """Write the model folder of ``cfg.ckpt_path`` to ``cfg.out_dir`` (the export config: sample options, out_dir,
    scorer_ckpt), drawing samples.png on ``device``; return its path."""
    out_dir = Path(cfg.out_dir).expanduser().resolve()
    if cfg.mode != "sample":
        raise ConfigError(f"mode={cfg.mode}: samples.png is a grid of plain samples; drop mode= (after the export, "
                          f"python -m parti_exp.sample ckpt_path={out_dir} mode={cfg.mode} ... draws from the folder)")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"out_dir={out_dir} exists and is not empty: give a new folder (nothing is overwritten)")
    source = checkpoint_file(cfg.ckpt_path)
    if source.is_dir():
        raise ConfigError(f"ckpt_path={source} is already a model folder: export reads a training checkpoint (a "
                          ".ckpt or a run directory), whose run it describes")
    temp = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    try:
        with trusting_checkpoints(cfg.trust_checkpoint):
            checkpoint = read_checkpoint(source)
            module, train_cfg = module_from_checkpoint(checkpoint)
            files = write_weights_and_config(module, train_cfg, checkpoint, temp)
            if cfg.get("scorer_ckpt"):
                files += _export_scorer(cfg.scorer_ckpt, temp)
        module = module.to(device)
        sample_cfg = cfg.copy()
        sample_cfg.ckpt_path = str(source)
        if cfg.get("scorer_ckpt"):
            sample_cfg.scorer_ckpt = str(temp / SCORER)  # the scorer as the folder holds it
        sampler = sampler_for(module, str(source))
        if sampler.draws_images:  # an image tokenizer or a scorer is exported without samples
            sampler.check(module, sample_cfg)
            drawn = temp / ".samples"
            sampler.sample(module, train_cfg, sample_cfg, drawn)
            (drawn / "grid.png").replace(temp / SAMPLES)
            shutil.rmtree(drawn)
            files.append(SAMPLES)
        (temp / CARD).write_text(render_card(_facts(module, train_cfg, checkpoint, source, cfg, out_dir, files)),
                                 encoding="utf-8")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above): the complete folder takes its place
        temp.rename(out_dir)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return out_dir


def _facts(module, train_cfg: DictConfig, checkpoint: dict, source: Path, cfg: DictConfig, out_dir: Path,
           files: list[str]) -> CardFacts:
    nets = {name: sum(p.numel() for p in getattr(module, name).parameters()) for name in module.sampling_nets()}
    run = checkpoint.get(RUN_KEY) or {}
    run_dir = source.parent.parent if source.parent.name == "checkpoints" else source.parent
    metrics_csv = run_dir / "csv" / "metrics.csv"
    data = train_cfg.data
    channels = data.get("channels")
    return CardFacts(
        family=module.family,
        module=type(module).__name__,
        sampling_params=sum(nets.values()),
        nets=nets,
        data=str(data.get("_target_", "?")).rsplit(".", 1)[-1],
        data_size=_data_size(train_cfg),
        resolution=f"{data.get('img_size')} x {data.get('img_size')} px, {channels} channel{'s' * (channels != 1)}",
        epochs=checkpoint["epoch"] + 1 if "epoch" in checkpoint else None,
        steps=_steps(checkpoint),
        wall_time_s=run.get("wall_time_s"),
        precision=str(OmegaConf.select(train_cfg, "trainer.precision", default="not recorded")),
        world_size=world_size(train_cfg),
        git_commit=run.get("git_commit"),
        source_checkpoint=str(source),
        sample_command=sample_command(cfg, out_dir) if SAMPLES in files else None,
        metrics=last_logged_metrics(metrics_csv) if metrics_csv.is_file() else [],
        metrics_source=f"{metrics_csv}" if metrics_csv.is_file() else None,
        files=sorted(files + [CARD]),
        scorer=SCORER if cfg.get("scorer_ckpt") else None,
    )
