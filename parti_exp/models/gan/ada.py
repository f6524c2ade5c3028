"""Adaptive discriminator augmentation (ADA, Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data").

D sees real and generated images through the same differentiable transforms, each applied to an image with one
probability ``p``. ``p`` is not fixed: every ``interval`` D steps it moves toward the value at which D stops
over-fitting, judged by r_t = E[sign(D(real))], the share of training reals D calls real minus the share it calls
fake. r_t above ``target`` (0.6 in the paper) means D is too sure of the training images, so ``p`` rises; below, it
falls. Each adjustment moves ``p`` by (images seen since the last one) / ``speed_images``, so ``p`` can cross
[0, 1] in ``speed_images`` real images (500k in the paper) whatever the batch size, interval or number of GPUs.

Below p ~ 0.8 the transforms do not "leak" into G's samples (the paper's sec. 2.3): G cannot win by producing
flipped or rotated images, since D sees augmented and clean images alike.

``p``, the running sum of signs and r_t are buffers: they are in the checkpoint, move with the module to its device,
and never need a host sync (the update is tensor arithmetic). The adjustment interval follows the adversarial
loop's own D step counter, which the checkpoint restores, so a resumed run adjusts on the same steps.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from parti_exp.models.gan.augment import Transform, brightness, contrast, cutout, parse_policy, saturation, translation
from parti_exp.runtime.validation import is_int_at_least, require


def xflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror every image left-right."""
    return x.flip(3)


def rotate90(x: torch.Tensor) -> torch.Tensor:
    """Rotate each image by its own multiple of 90 degrees (90, 180 or 270): a square image stays on its grid."""
    require(x.shape[2] == x.shape[3], "ADA's rotate90", f"needs square images, got {x.shape[2]}x{x.shape[3]}")
    turns = torch.randint(1, 4, (x.shape[0], 1, 1, 1), device=x.device)
    out = x
    for k in (1, 2, 3):
        out = torch.where(turns == k, x.rot90(k, dims=(2, 3)), out)
    return out


# Each name switches on transforms that are applied one after the other, each with probability p per image.
OPS: dict[str, list[Transform]] = {
    "xflip": [xflip],
    "rotate90": [rotate90],
    "translation": [translation],  # integer shifts of up to 1/8 of the size, zero fill (DiffAugment's)
    "color": [brightness, saturation, contrast],
    "cutout": [cutout],
}


def with_probability(transform: Transform, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``transform(x)`` for each image with probability ``p``, the image itself otherwise (exactly: at p = 0 the
    output is ``x``). A per-image choice between two differentiable branches, so gradients reach ``x`` either way."""
    chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p
    return torch.where(chosen, transform(x), x)


class AdaptiveAugment(nn.Module):
    """ADA's pipeline and its controller: ``augment(images)`` transforms D's inputs with the current ``p``;
    ``observe(real_logits, d_step)`` (called by the adversarial loop after each D update) collects sign(D(real))
    and adjusts ``p`` on every ``interval``-th D step."""

    def __init__(
        self,
        ops: str = "xflip,rotate90,translation,color,cutout",
        target: float = 0.6,
        interval: int = 4,
        speed_images: int = 500_000,
        initial_p: float = 0.0,
    ) -> None:
        super().__init__()
        self.ops, self.transforms = parse_policy(ops, OPS, "augment.pipeline.ops")
        require(0.0 < target < 1.0, "augment.pipeline.target", f"must be in (0, 1), got {target}")
        require(is_int_at_least(interval, 1), "augment.pipeline.interval", f"must be an integer >= 1, got {interval!r}")
        require(is_int_at_least(speed_images, 1), "augment.pipeline.speed_images",
                f"must be an integer >= 1 (real images for p to go from 0 to 1), got {speed_images!r}")
        require(0.0 <= initial_p <= 1.0, "augment.pipeline.initial_p", f"must be in [0, 1], got {initial_p}")
        self.target = target
        self.interval = interval
        self.speed_images = speed_images
        self.register_buffer("p", torch.tensor(float(initial_p)))
        # sign(D(real)) summed over the real images since the last adjustment, and how many images that was
        self.register_buffer("sign_sum", torch.tensor(0.0))
        self.register_buffer("images", torch.tensor(0.0))
        self.register_buffer("rt", torch.tensor(0.0))  # r_t of the last adjustment, for the logs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = self.p.to(images.dtype)
        for transform in self.transforms:
            images = with_probability(transform, images, p)
        return images

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor, d_step: int) -> dict[str, torch.Tensor]:
        """Collect this D step's sign(D(real)); on every ``interval``-th step (``d_step`` counts from 0) set r_t and
        move ``p``. Returns ``train/ada_p`` and ``train/ada_rt`` for the logs."""
        # One sign per image: a patch discriminator's map is averaged first, so each image weighs the same.
        signs = real_logits.float().reshape(real_logits.shape[0], -1).mean(1).sign()
        self.sign_sum += signs.sum()
        self.images += signs.numel()
        if (d_step + 1) % self.interval == 0:
            self._adjust()
        return {"train/ada_p": self.p.clone(), "train/ada_rt": self.rt.clone()}

    def _adjust(self) -> None:
        counts = torch.stack([self.sign_sum, self.images])
        if dist.is_available() and dist.is_initialized():
            # Every rank reaches this on the same D step: one decision from all ranks' images keeps p equal on all.
            dist.all_reduce(counts)
        sign_sum, images = counts
        self.rt.copy_(sign_sum / images.clamp(min=1))
        step = torch.sign(self.rt - self.target) * images / self.speed_images
        self.p.copy_((self.p + step).clamp(0.0, 1.0))
        self.sign_sum.zero_()
        self.images.zero_()

    def extra_repr(self) -> str:
        return (f"ops={self.ops!r}, target={self.target}, interval={self.interval}, "
                f"speed_images={self.speed_images}")
