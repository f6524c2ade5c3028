"""Caption accuracy: the share of samples for "a handwritten seven" that a held-out digit reader reads as a 7.

The reader (``DigitReader`` over the digit classifier of ``metrics=classifier``, trained on the real train split and
checked on the val split) never sees generated images while it is trained, so it judges the text-to-image model from
the outside; a blend of two digits or a smudge is read as no digit, so it counts as a miss. Measured with the
model's guidance scale and without guidance (scale 1), to show what guidance buys.
"""

from __future__ import annotations

import dataclasses

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from parti_exp.data.captions.labels import Captioner, LabelCaptions
from parti_exp.errors import ConfigError
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.metrics.digit_reader import DigitReader
from parti_exp.protocols import SamplesForPrompts
from parti_exp.runtime.schedule import check_every_n_epochs, due_this_epoch
from parti_exp.runtime.validation import require


@torch.no_grad()
def caption_accuracy(
    model: SamplesForPrompts,
    reader: DigitReader,
    captioner: Captioner,
    per_class: int,
    sampling: object,
    seed: int = 0,
    batch_size: int = 200,
) -> float:
    """Share of ``per_class`` samples of each class prompt that ``reader`` reads as that class."""
    prompts = captioner.prompts_for_classes()
    targets = [captioner.class_of(prompt) for prompt in prompts]
    captions = [prompt for prompt in prompts for _ in range(per_class)]
    wanted = torch.tensor([target for target in targets for _ in range(per_class)])
    generator = torch.Generator(model.device).manual_seed(seed)
    hits = 0
    for start in range(0, len(captions), batch_size):
        images = model.sample_images(captions[start : start + batch_size], sampling, generator)
        read = reader.read(images)
        hits += int((read == wanted[start : start + batch_size]).sum())
    return hits / len(captions)


class CaptionAccuracy(Callback):
    """Logs ``val/caption_acc`` (the model's guidance scale) and ``val/caption_acc_unguided`` every N epochs, on
    labelled data whose captions name one class (the ``conf/model_data/parti_<data>.yaml`` of such data adds it)."""

    def __init__(self, cache_dir: str, per_class: int = 50, every_n_epochs: int = 5, seed: int = 0) -> None:
        require(per_class >= 1, "caption_accuracy.per_class", f"must be >= 1, got {per_class}")
        check_every_n_epochs("caption_accuracy", every_n_epochs)
        self.cache_dir = cache_dir
        self.per_class = per_class
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self.reader: DigitReader | None = None
        self.captioner: Captioner | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        datamodule.setup("fit")
        source = datamodule.caption_source()
        if not isinstance(source, LabelCaptions) or not source.captioner.single_label:
            # Free-text (or multi-attribute) captions name no one class a classifier could read back.
            raise ConfigError(f"callbacks.caption_accuracy reads each sample's class back, and {datamodule.name}'s "
                              "captions do not name one class per image: set callbacks.caption_accuracy=null")
        self.captioner = source.captioner
        classifier = load_or_train_classifier(
            datamodule.train_set,
            datamodule.val_set,
            datamodule.num_classes,
            self.cache_dir,
            pl_module.device,
            datamodule.name,
        ).net
        self.reader = DigitReader.fitted(classifier, datamodule.train_set)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not due_this_epoch(trainer, self.every_n_epochs):
            return
        self.reader.to(pl_module.device)
        guided = pl_module.sampling
        unguided = dataclasses.replace(guided, guidance_scale=1.0)
        for key, sampling in (("val/caption_acc", guided), ("val/caption_acc_unguided", unguided)):
            value = caption_accuracy(pl_module, self.reader, self.captioner, self.per_class, sampling, self.seed)
            pl_module.log(key, value, sync_dist=False, rank_zero_only=True)
