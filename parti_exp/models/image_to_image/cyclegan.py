"""Unpaired image-to-image translation (``model=cyclegan``; Zhu et al. 2017), trained in the adversarial loop.

G is the pair of translators (A -> B, B -> A), D the pair of domain discriminators (``parti_exp.nets.cyclegan``):
the loop hands D domain B's images followed by domain A's, real or fake, so one D update trains both
discriminators and one G update both translators. G's loss is the adversarial terms of both directions (the loop's
mean over the two halves, times 2: the paper sums them), ``cycle_weight`` (λ = 10) times the L1 cycle losses
||G_BA(G_AB(a)) - a|| + ||G_AB(G_BA(b)) - b||, and ``identity_weight`` x λ (0.5 λ) times the identity losses
||G_AB(b) - b|| + ||G_BA(a) - a||. The paper's loss is LSGAN (``loss=lsgan``, this model's default), and D sees
fakes drawn partly from a pool of 50 earlier ones per domain (``pool_size``).

Validation logs the cycle-reconstruction PSNR both ways (``val/cycle_psnr_a``, ``val/cycle_psnr_b``) and, when the
validation split pairs each A image with its B partner (``data=digit_styles``), ``val/psnr`` / ``val/ssim`` of
G_AB(a) against it beside ``val/psnr_baseline`` / ``val/ssim_baseline``, a itself against it.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from parti_exp.errors import ConfigError
from parti_exp.metrics.psnr_ssim import psnr, ssim
from parti_exp.models.image_to_image.image_pool import ImagePool
from parti_exp.models.image_to_image.tasks import ImageTranslation
from parti_exp.models.image_to_image.translator import NetFactory, TranslatorModule
from parti_exp.nets.cyclegan import CycleGenerators, DomainDiscriminators
from parti_exp.protocols import ServesImagePairs
from parti_exp.runtime.validation import require


class CycleGANModule(TranslatorModule):
    directions = ("a_to_b", "b_to_a")

    def __init__(
        self,
        generator: NetFactory,
        discriminator: NetFactory,
        img_size: int,
        channels: int,
        *args,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        pool_size: int = 50,
        **kwargs,
    ) -> None:
        require(cycle_weight >= 0, "model.cycle_weight", f"must be >= 0, got {cycle_weight}")
        require(identity_weight >= 0, "model.identity_weight", f"must be >= 0, got {identity_weight}")
        translator = dict(img_size=img_size, in_channels=channels, out_channels=channels)
        critic = dict(img_size=img_size, channels=channels)
        super().__init__(
            CycleGenerators(generator(**translator), generator(**translator)),
            DomainDiscriminators(discriminator(**critic), discriminator(**critic)),
            *args,
            **kwargs,
        )
        self.task = ImageTranslation(img_size, channels)
        self.cycle_weight = cycle_weight
        self.identity_weight = identity_weight
        self.pools = {"b": ImagePool(pool_size), "a": ImagePool(pool_size)}
        self._val_aligned = False
        self._loaded_pools: list[dict] | None = None

    def task_for(self, direction: str) -> ImageTranslation:
        self.check_direction(direction)
        return self.task

    def direction_net(self, net: CycleGenerators, direction: str) -> nn.Module:
        return net.a_to_b if direction == "a_to_b" else net.b_to_a

    def check_data(self, datamodule: object) -> None:
        if not isinstance(datamodule, ServesImagePairs):
            raise ConfigError("model=cyclegan learns from two sets of images: use data=unpaired (CycleGAN's trainA/ "
                              "trainB/ testA/ testB/ folders), data=digit_styles, or data=paired")
        self._val_aligned = datamodule.val_aligned

    def split(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) of a served batch."""
        return self.task.pair(images, None)

    def training_step(self, batch, batch_idx: int) -> None:
        a, b = self.split(batch[0])
        # B's images first, then A's: the order DomainDiscriminators reads, real and fake alike.
        super().training_step((torch.cat([b, a]), None), batch_idx)

    def make_fakes(self, real: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        b, a = real.chunk(2)
        out = self._replicas.get("g", self.generator)(a, b, identity=self.identity_weight > 0)
        terms = {"cycle": self.cycle_weight * (F.l1_loss(out.cycled_a.float(), a) + F.l1_loss(out.cycled_b.float(), b))}
        if self.identity_weight > 0:
            terms["identity"] = self.identity_weight * self.cycle_weight * (
                F.l1_loss(out.same_b.float(), b) + F.l1_loss(out.same_a.float(), a)
            )
        return torch.cat([out.fake_b, out.fake_a]), terms

    def adversarial_weight(self) -> float:
        return 2.0  # the loop averages D's verdicts over both domains' fakes; the paper sums the two G terms

    def discriminator_fakes(self, fakes: torch.Tensor) -> torch.Tensor:
        fake_b, fake_a = fakes.chunk(2)
        return torch.cat([self.pools["b"].query(fake_b), self.pools["a"].query(fake_a)])

    def validation_step(self, batch, batch_idx: int) -> None:
        images, _ = batch
        a, b = self.split(images)
        fake_b, fake_a = self.translate(a, "a_to_b"), self.translate(b, "b_to_a")
        values = {
            "val/cycle_psnr_a": psnr(self.translate(fake_b, "b_to_a"), a).mean(),
            "val/cycle_psnr_b": psnr(self.translate(fake_a, "a_to_b"), b).mean(),
            "val/d_real": self.discriminator(torch.cat([b, a])).float().mean(),
        }
        if self._val_aligned:
            values.update({
                "val/psnr": psnr(fake_b, b).mean(),
                "val/ssim": ssim(fake_b, b).mean(),
                "val/psnr_baseline": psnr(a, b).mean(),
                "val/ssim_baseline": ssim(a, b).mean(),
            })
        self.log_dict(values, batch_size=images.shape[0], sync_dist=True)

    def translation_examples(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        a, b = self.split(images)
        fake_b, fake_a = self.translate(a, "a_to_b"), self.translate(b, "b_to_a")
        return [a, fake_b.cpu(), self.translate(fake_b, "b_to_a").cpu(),
                b, fake_a.cpu(), self.translate(fake_a, "a_to_b").cpu()]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        pools = {name: pool.state_dict() for name, pool in self.pools.items()}
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # Rank 0 writes the checkpoint, but each rank has its own pool: every rank takes part here.
            gathered: list[dict | None] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, {k: {**v, "images": _cpu(v["images"])} for k, v in pools.items()})
            checkpoint["image_pools"] = gathered
        else:
            checkpoint["image_pools"] = [pools]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self._loaded_pools = checkpoint.get("image_pools")

    def on_train_start(self) -> None:
        # After DDP has started (this rank is known) and the weights are on their device.
        if not self._loaded_pools:
            return
        states = self._loaded_pools[self.global_rank % len(self._loaded_pools)]
        for name, pool in self.pools.items():
            images = states[name]["images"]
            pool.load_state_dict({**states[name], "images": None if images is None else images.to(self.device)})
        self._loaded_pools = None


def _cpu(images: torch.Tensor | None) -> torch.Tensor | None:
    return None if images is None else images.cpu()
