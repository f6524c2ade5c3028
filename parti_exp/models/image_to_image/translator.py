"""What pix2pix and CycleGAN share beyond the adversarial loop: they translate images (``Translates``), show fixed
held-out translations in the epoch grid, and make the images the metrics callback compares with the dataset's
(outputs for held-out inputs, ``MakesImagesForMetrics``)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from parti_exp.errors import ConfigError
from parti_exp.models.gan.module import AdversarialModule
from parti_exp.protocols import TranslationTask
from parti_exp.runtime.torch_utils import eval_mode

NetFactory = Callable[..., nn.Module]


class TranslatorModule(AdversarialModule):
    """A subclass names its ``directions``, says which task each has (``task_for``), which net runs it
    (``direction_net``), and what a grid shows (``translation_examples``)."""

    family = "image_to_image"
    directions: tuple[str, ...] = ("a_to_b",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The held-out split the metrics translate (a dataset of the data module's; not part of the checkpoint).
        self._held_out = None

    def task_for(self, direction: str) -> TranslationTask:
        raise NotImplementedError(f"{type(self).__name__} must implement task_for")

    def direction_net(self, net: nn.Module, direction: str) -> nn.Module:
        """The part of the generator ``net`` (G or its moving average) that translates ``direction``."""
        raise NotImplementedError(f"{type(self).__name__} must implement direction_net")

    def check_direction(self, direction: str) -> None:
        if direction not in self.directions:
            raise ConfigError(f"direction={direction}: {type(self).__name__} translates {', '.join(self.directions)}")

    @property
    def _sampling_net(self) -> nn.Module:
        return self.generator if self.generator_ema is None else self.generator_ema

    @torch.no_grad()
    def translate(self, inputs: torch.Tensor, direction: str = "a_to_b") -> torch.Tensor:
        """Outputs in [-1, 1] for inputs made as ``task_for(direction)`` makes them, with the generator (its moving
        average when EMA is on) in eval mode."""
        self.check_direction(direction)
        net = self._sampling_net
        inputs = inputs.to(self.device)
        with eval_mode(net):
            outputs = self.direction_net(net, direction)(inputs).float()
        return self.task_for(direction).finish(outputs, inputs)

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        self.check_data(datamodule)
        self.use_held_out(datamodule)

    def check_data(self, datamodule: object) -> None:
        """ConfigError unless ``datamodule`` serves what this model learns from."""

    def use_held_out(self, datamodule) -> None:
        """Translate ``datamodule``'s validation split for the metrics (``python -m parti_exp.evaluate`` calls this;
        a training run does in ``setup``)."""
        datamodule.setup("fit")
        self._held_out = datamodule.val_set

    def held_out_batch(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` held-out items as the data module serves them, drawn with ``generator``, in [-1, 1] on the
        CPU."""
        if self._held_out is None:
            raise RuntimeError(f"{type(self).__name__} translates held-out images: call use_held_out(datamodule) first")
        index = torch.randint(len(self._held_out), (count,), generator=generator)
        images, _ = self._held_out.__getitems__(index.tolist())
        return images.float() / 127.5 - 1

    def generate_for_metrics(self, n: int, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        # Outputs for held-out inputs, made on the CPU from the caller's generator: the same on any device.
        task = self.task_for(self.directions[0])
        inputs, _ = task.pair(self.held_out_batch(n, generator), generator)
        return self.translate(inputs, self.directions[0])

    def translation_examples(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        """Rows for the epoch grid from held-out ``images`` (as served, in [-1, 1]), each a batch of images of the
        output's shape: pix2pix's input, output and target; CycleGAN's each way."""
        raise NotImplementedError(f"{type(self).__name__} must implement translation_examples")
