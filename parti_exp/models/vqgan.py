"""Stage 1 of text-to-image (``model=vqgan``): the VQGAN image tokenizer, trained in the adversarial loop.

G is an autoencoder with a quantised bottleneck: its "fakes" are reconstructions of the real batch, and its
loss adds reconstruction and commitment terms to the adversarial one. D (a patch discriminator) and the
adversarial term start only after ``adversarial_start`` generator steps: an adversary facing blurry early
reconstructions wins at once and its gradients swamp the reconstruction signal (Esser et al. 2021).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from parti_exp.metrics.psnr_ssim import psnr
from parti_exp.models.gan.module import AdversarialModule
from parti_exp.runtime.schedule import logged_this_step
from parti_exp.runtime.torch_utils import eval_mode
from parti_exp.runtime.validation import require

RECONSTRUCTION_LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss}


class VQGANModule(AdversarialModule):
    family = "vqgan"

    def __init__(
        self,
        *args,
        reconstruction: str = "l1",
        reconstruction_weight: float = 1.0,
        commit_weight: float = 1.0,
        adversarial_weight: float = 0.1,
        adversarial_start: int = 1000,
        dead_code_every: int = 100,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        require(reconstruction in RECONSTRUCTION_LOSSES, "model.reconstruction",
                f"must be one of {sorted(RECONSTRUCTION_LOSSES)}, got {reconstruction!r}")
        weights = {
            "reconstruction_weight": reconstruction_weight,
            "commit_weight": commit_weight,
            "adversarial_weight": adversarial_weight,
            "adversarial_start": adversarial_start,
        }
        for name, value in weights.items():
            require(value >= 0, f"model.{name}", f"must be >= 0, got {value}")
        require(dead_code_every >= 1, "model.dead_code_every", f"must be >= 1, got {dead_code_every}")
        self.reconstruction_loss = RECONSTRUCTION_LOSSES[reconstruction]
        self.reconstruction_weight = reconstruction_weight
        self.commit_weight = commit_weight
        self.adversarial_weight_after_start = adversarial_weight
        self.adversarial_start = adversarial_start
        self.dead_code_every = dead_code_every

    def make_fakes(self, real: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        reconstruction, quantized = self._replicas.get("g", self.generator)(real, labels)
        terms = {
            "rec": self.reconstruction_weight * self.reconstruction_loss(reconstruction.float(), real.float()),
            "commit": self.commit_weight * quantized.commit_loss,
        }
        if logged_this_step(self.trainer):
            self.log_dict(
                {
                    "train/psnr": psnr(reconstruction.detach(), real).mean(),
                    "train/perplexity": quantized.perplexity.detach(),
                    "train/codebook_usage": quantized.usage.detach(),
                },
                on_step=True, on_epoch=False, batch_size=real.shape[0],
            )
        return reconstruction, terms

    def adversarial_weight(self) -> float:
        return self.adversarial_weight_after_start if self.g_step >= self.adversarial_start else 0.0

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # Every rank calls this at the same step: the re-initialisation is synchronised across ranks.
        if self.g_step and self.g_step % self.dead_code_every == 0:
            revived = self.generator.quantizer.reinit_dead_codes()
            self.log("train/dead_codes_reset", float(revived), on_step=True, on_epoch=False)

    def validation_step(self, batch, batch_idx: int) -> None:
        real, labels = batch
        reconstruction, _ = self.generator(real, labels)
        self.log("val/psnr", psnr(reconstruction, real).mean(), batch_size=real.shape[0], sync_dist=True)
        self.log("val/rec", self.reconstruction_loss(reconstruction.float(), real.float()), batch_size=real.shape[0],
                 sync_dist=True)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Encode to codes and decode again, in eval mode, as stage 2 sees the images."""
        with eval_mode(self.generator):
            return self.generator.decode(self.generator.encode(images.to(self.device))).float()
