"""Scene accuracy: the share of samples for "a 3 to the left of a seven" that show exactly that, read cell by cell.

The evaluation prompts (``DigitScenesDataModule.evaluation_prompts``) cover every category, both content seen in
training and content held out of it. Each sample is read by ``SceneReader`` (empty cells by ink, digits by the
held-out digit reader, which declines blends and smudges) and counts as correct only when the digits, their number
and their arrangement all match the prompt's ``SceneSpec``; nothing is parsed from the prompt's text. Measured with
the model's guidance scale and without guidance (scale 1), like caption accuracy.

Logged keys: ``val/scene_accuracy`` (seen content, all categories) and ``val/scene_accuracy_heldout``, the same per
category (``val/scene_accuracy_left_right``, ``val/scene_accuracy_heldout_count``, ...), each also with
``_unguided``. A category without held-out content has no held-out key.
"""

from __future__ import annotations

import dataclasses

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from parti_exp.data.captions.digit_scenes import DigitScenesDataModule
from parti_exp.data.captions.scene_spec import CATEGORIES, ScenePrompt
from parti_exp.errors import ConfigError
from parti_exp.metrics.scene_reader import SceneReader, load_scene_reader
from parti_exp.protocols import SamplesForPrompts
from parti_exp.runtime.schedule import check_every_n_epochs, due_this_epoch
from parti_exp.runtime.validation import require


def _name(held_out: bool, category: str | None) -> str:
    return "scene_accuracy" + ("_heldout" if held_out else "") + (f"_{category}" if category else "")


def score_scenes(prompts: list[ScenePrompt], read: torch.Tensor) -> dict[str, float]:
    """Accuracies by group from the cells ``read`` (one row per prompt in ``prompts``): overall and per category,
    for seen and held-out content separately; groups without prompts are left out."""
    correct = [prompt.spec.matches(cells) for prompt, cells in zip(prompts, read.tolist())]
    results = {}
    for held_out in (False, True):
        for category in (None, *CATEGORIES):
            hits = [hit for prompt, hit in zip(prompts, correct)
                    if prompt.held_out == held_out and category in (None, prompt.spec.category)]
            if hits:
                results[_name(held_out, category)] = sum(hits) / len(hits)
    return results


@torch.no_grad()
def scene_accuracy(
    model: SamplesForPrompts,
    reader: SceneReader,
    prompts: list[ScenePrompt],
    per_prompt: int,
    sampling: object,
    seed: int = 0,
    batch_size: int = 200,
) -> dict[str, float]:
    """Scene accuracies (``score_scenes``) of ``per_prompt`` samples of each prompt."""
    repeated = [prompt for prompt in prompts for _ in range(per_prompt)]
    generator = torch.Generator(model.device).manual_seed(seed)
    read = []
    for start in range(0, len(repeated), batch_size):
        batch = [prompt.text for prompt in repeated[start : start + batch_size]]
        read.append(reader.read(model.sample_images(batch, sampling, generator)))
    return score_scenes(repeated, torch.cat(read))


class SceneAccuracy(Callback):
    """Logs the scene accuracies (see the module's docstring) every N epochs on ``data=digit_scenes``
    (``conf/model_data/parti_digit_scenes.yaml`` adds it)."""

    def __init__(
        self,
        cache_dir: str,
        per_prompt: int = 10,
        specs_per_category: int = 5,
        phrasings: int = 2,
        every_n_epochs: int = 5,
        seed: int = 0,
    ) -> None:
        require(per_prompt >= 1, "scene_accuracy.per_prompt", f"must be >= 1, got {per_prompt}")
        check_every_n_epochs("scene_accuracy", every_n_epochs)
        self.cache_dir = cache_dir
        self.per_prompt = per_prompt
        self.specs_per_category = specs_per_category
        self.phrasings = phrasings
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self.reader: SceneReader | None = None
        self.prompts: list[ScenePrompt] = []

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if not isinstance(datamodule, DigitScenesDataModule):
            raise ConfigError(f"callbacks.scene_accuracy reads digit scenes (data=digit_scenes), not "
                              f"{datamodule.name}: set callbacks.scene_accuracy=null")
        self.prompts = datamodule.evaluation_prompts(self.specs_per_category, self.phrasings, self.seed)
        self.reader = load_scene_reader(datamodule.digits, self.cache_dir, pl_module.device)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not due_this_epoch(trainer, self.every_n_epochs):
            return
        self.reader.to(pl_module.device)
        guided = pl_module.sampling
        unguided = dataclasses.replace(guided, guidance_scale=1.0)
        for suffix, sampling in (("", guided), ("_unguided", unguided)):
            results = scene_accuracy(pl_module, self.reader, self.prompts, self.per_prompt, sampling, self.seed)
            for key, value in results.items():
                pl_module.log(f"val/{key}{suffix}", value, sync_dist=False, rank_zero_only=True)
