"""Paired image-to-image translation (``model=pix2pix``; Isola et al. 2017), trained in the adversarial loop.

Each batch becomes (input, target) on the device through the task (``task=``, ``parti_exp.models.image_to_image.
tasks``); G (a U-Net) maps the input to an output, and D (a conditional PatchGAN) judges the output, or the target,
beside the input: the loop hands D the input where a conditional GAN's D gets labels, so the adversarial update, the
penalties (R1 on the real targets), EMA, the guard, DDP per net and precision are the loop's own. G's loss adds
``l1_weight`` (λ = 100, as in the paper) times the L1 distance to the target to the adversarial term.

Validation logs ``val/psnr`` and ``val/ssim`` of the outputs against the targets beside ``val/psnr_baseline`` and
``val/ssim_baseline``, the same for the task's naive output (bicubic upsampling, the noisy input, ...): every curve
has its floor. The held-out inputs are drawn from fixed seeds, so an epoch's numbers are comparable with the last.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from parti_exp.metrics.psnr_ssim import psnr, ssim
from parti_exp.models.image_to_image.tasks import Task
from parti_exp.models.image_to_image.translator import NetFactory, TranslatorModule
from parti_exp.runtime.validation import require


class Pix2PixModule(TranslatorModule):
    def __init__(
        self, generator: NetFactory, discriminator: NetFactory, task: Task, *args, l1_weight: float = 100.0, **kwargs
    ) -> None:
        require(l1_weight >= 0, "model.l1_weight", f"must be >= 0, got {l1_weight}")
        # The task decides the nets' shapes: what comes in (channels with the mask, a smaller side) and what goes out.
        net = generator(img_size=task.img_size, in_channels=task.input_channels, out_channels=task.channels,
                        upscale=task.upscale)
        critic = discriminator(img_size=task.img_size, channels=task.channels, condition_channels=task.input_channels)
        super().__init__(net, critic, *args, **kwargs)
        self.task = task
        self.l1_weight = l1_weight

    def task_for(self, direction: str) -> Task:
        self.check_direction(direction)
        return self.task

    def direction_net(self, net, direction: str):
        return net

    def check_data(self, datamodule: object) -> None:
        self.task.check_data(datamodule)

    def pair(self, images: torch.Tensor, *stream: object) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) for a served batch, random draws seeded from ``stream`` and this rank."""
        generator = self.task.generator(images.device, *stream, self.global_rank) if self.task.random else None
        # Outside autocast: a blur kernel or the noise is the task's, not a lower-precision approximation of it.
        with torch.autocast(images.device.type, enabled=False):
            return self.task.pair(images.float(), generator)

    def training_step(self, batch, batch_idx: int) -> None:
        images, _ = batch
        inputs, targets = self.pair(images, "train", self.d_step)
        # D's condition rides where a conditional GAN's labels do: the loop passes it to every call of D.
        super().training_step((targets, inputs), batch_idx)

    def make_fakes(self, real: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        inputs = labels
        outputs = self.task.finish(self._replicas.get("g", self.generator)(inputs), inputs)
        return outputs, {"l1": self.l1_weight * F.l1_loss(outputs.float(), real.float())}

    def validation_step(self, batch, batch_idx: int) -> None:
        images, _ = batch
        inputs, targets = self.pair(images, "val", batch_idx)
        outputs = self.translate(inputs)
        baseline = self.task.baseline(inputs)
        values = {
            "val/psnr": psnr(outputs, targets).mean(),
            "val/ssim": ssim(outputs, targets).mean(),
            "val/psnr_baseline": psnr(baseline, targets).mean(),
            "val/ssim_baseline": ssim(baseline, targets).mean(),
            "val/l1": F.l1_loss(outputs, targets.float()),
            # D's mean logit on held-out real pairs, as for every adversarial model (its drift from train/d_real
            # shows D memorising the training set).
            "val/d_real": self.discriminator(targets, inputs).float().mean(),
        }
        self.log_dict(values, batch_size=images.shape[0], sync_dist=True)

    def translation_examples(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        inputs, targets = self.task.pair(images, generator)
        return [self.task.show(inputs), self.translate(inputs).cpu(), targets]
