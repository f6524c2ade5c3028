"""The variational autoencoder (``model=vae``; Kingma & Welling 2014): the other family GANs are compared with.

A convolutional encoder gives a diagonal Gaussian posterior q(z | x), a latent is drawn with the reparameterisation
trick, and the decoder's output is read by a pixel likelihood p(x | z) (``pixel_likelihood.py``). The loss is the
negative ELBO per image, in nats, with the KL term weighted by β (Higgins et al. 2017) after a linear warm-up over the
first optimizer steps, optionally with free bits per latent dimension (``elbo.py``).

One optimizer, stepped by hand as in the GAN loop so that the same non-finite guard and gradient clipping apply;
Lightning's ``global_step`` then counts exactly this optimizer's steps, which is what the warm-up follows, and it is
restored on resume.

Logged: ``train/loss``, ``train/elbo``, ``train/recon``, ``train/kl`` (nats per image), ``train/kl_weight`` and
``train/active_units`` (in the batch); on the validation split ``val/elbo``, ``val/recon``, ``val/kl``,
``val/active_units`` (Burda et al. 2016: dimensions whose posterior mean varies with x, Cov > 0.01; the others have
collapsed to the prior), ``val/bpd`` (the ELBO in bits per dimension, see ``PixelLikelihood.bpd_meaning``) and
``val/bpd_iw`` (the importance-weighted bound with ``iw_samples`` samples, on the first ``iw_images`` images).
Samples decode prior draws z ~ N(0, I) and show the likelihood's mean, as VAE papers do.
"""

from __future__ import annotations

from typing import Callable

import torch
from lightning.pytorch import LightningModule

from parti_exp.models.vae.elbo import (
    active_units,
    bits_per_dim,
    free_bits_kl,
    gaussian_kl,
    importance_weighted_bound,
    kl_weight,
    log_normal,
)
from parti_exp.models.vae.pixel_likelihood import PixelLikelihood
from parti_exp.protocols import VariationalAutoencoder
from parti_exp.runtime.distributed import seed_per_rank
from parti_exp.runtime.guard import NonFiniteGuard, guarded_step
from parti_exp.runtime.schedule import logged_this_step
from parti_exp.runtime.torch_utils import eval_mode, grad_scaler
from parti_exp.runtime.validation import is_int_at_least, require

NetFactory = Callable[..., torch.nn.Module]
OptimizerFactory = Callable[..., torch.optim.Optimizer]
LogProb = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# Latent samples decoded at once by the importance-weighted bound: k x batch images would not fit for k = 64.
IW_CHUNK = 16
# Burda et al.'s threshold on Cov_x(E_q[z_i | x]).
ACTIVE_THRESHOLD = 1e-2


class VAEModule(LightningModule):
    family = "vae"
    # The latent tools' protocol (LatentImageModel): no style space, no classes.
    has_style_space = False
    num_classes = None

    def __init__(
        self,
        net: NetFactory,
        optimizer: OptimizerFactory,
        likelihood: str = "bernoulli",
        gaussian_std: float | None = None,
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        free_bits: float = 0.0,
        iw_samples: int = 64,
        iw_images: int = 500,
        grad_clip_val: float | None = None,
        guard: NonFiniteGuard | None = None,
        val_seed: int = 0,
    ) -> None:
        """``net``: a partial of the encoder-decoder, completed with the likelihood's ``params_per_channel``."""
        super().__init__()
        require(beta >= 0, "model.beta", f"must be >= 0 (0: a plain autoencoder), got {beta!r}")
        require(is_int_at_least(kl_warmup_steps, 0), "model.kl_warmup_steps",
                f"must be an integer >= 0 (0: no warm-up), got {kl_warmup_steps!r}")
        require(free_bits >= 0, "model.free_bits",
                f"must be >= 0 nats per latent dimension (0: off), got {free_bits!r}")
        require(is_int_at_least(iw_samples, 1), "model.iw_samples", f"must be an integer >= 1, got {iw_samples!r}")
        require(is_int_at_least(iw_images, 0), "model.iw_images",
                f"must be an integer >= 0 (0: no val/bpd_iw), got {iw_images!r}")
        require(grad_clip_val is None or grad_clip_val > 0, "model.grad_clip_val",
                f"must be > 0 or null, got {grad_clip_val!r}")
        self.automatic_optimization = False
        self.likelihood = PixelLikelihood(likelihood, gaussian_std)
        self.net = net(params_per_channel=self.likelihood.params_per_channel)
        if not isinstance(self.net, VariationalAutoencoder):
            raise TypeError(f"{type(self.net).__name__} must have latent_dim, encode and decode to be a VAE's net")
        self.optimizer_factory = optimizer
        self.beta = beta
        self.kl_warmup_steps = kl_warmup_steps
        self.free_bits = free_bits
        self.iw_samples = iw_samples
        self.iw_images = iw_images
        self.grad_clip_val = grad_clip_val
        self.guard = guard
        self.val_seed = val_seed
        self._val_rng: torch.Generator | None = None
        self._val_moments: list[torch.Tensor] = []

    @property
    def latent_dim(self) -> int:
        return self.net.latent_dim

    @property
    def progress_step(self) -> int:
        """Optimizer steps (``ReportsProgress``)."""
        return self.trainer.global_step

    @property
    def bpd_meaning(self) -> str:
        return self.likelihood.bpd_meaning

    def on_fit_start(self) -> None:
        seed_per_rank(self.trainer)

    def sampling_nets(self) -> tuple[str, ...]:
        """The encoder-decoder (``NamesSamplingNets``)."""
        return ("net",)

    def compile_nets(self) -> None:
        self.net.compile()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.net.parameters())

    def kl_weight(self) -> float:
        """The KL weight at this optimizer step (step 0 for a module outside a Trainer)."""
        steps = self.trainer.global_step if self._trainer is not None else 0
        return kl_weight(steps, self.beta, self.kl_warmup_steps)

    def elbo_parts(
        self, images: torch.Tensor, log_prob: LogProb, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log p(x | z) per image for one reparameterised z ~ q(z | x), drawn from ``generator`` (None: the global
        stream), the KL per latent dimension B x L in closed form, the posterior means B x L)."""
        mean, logvar = (t.float() for t in self.net.encode(images))
        noise = torch.randn(mean.shape, device=mean.device, generator=generator)
        z = mean + torch.exp(0.5 * logvar) * noise  # the reparameterisation trick
        return log_prob(self.net.decode(z), images), gaussian_kl(mean, logvar), mean

    def loss_terms(self, images: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor | float]]:
        """The terms of this step's loss (``recon``, and ``kl`` weighted by the warm-up's β unless that is 0), nats
        per image, and what they log."""
        log_px, kl_dims, mean = self.elbo_parts(images, self.likelihood.log_prob)
        recon = -log_px.mean()
        kl = kl_dims.sum(1).mean()
        weight = self.kl_weight()
        terms = {"recon": recon}
        if weight > 0:  # β = 0 (or the warm-up's first step): a plain autoencoder, the KL not even in the graph
            terms["kl"] = weight * (free_bits_kl(kl_dims, self.free_bits) if self.free_bits > 0 else kl)
        mean = mean.detach()
        logs = {
            "train/elbo": -(recon + kl).detach(),
            "train/recon": recon.detach(),
            "train/kl": kl.detach(),
            "train/kl_weight": weight,
            "train/active_units": active_units(mean.sum(0), mean.pow(2).sum(0), len(mean), ACTIVE_THRESHOLD),
        }
        return terms, logs

    def training_step(self, batch, batch_idx: int) -> None:
        images, _ = batch
        opt = self.optimizers()
        terms, logs = self.loss_terms(images)
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self._guarded_step(opt, {"loss": loss, **terms})
        if not logged_this_step(self.trainer):  # a value logged on another step would be collected, then dropped
            return
        count = images.shape[0]
        self.log("train/loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=False, batch_size=count)
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=count)

    def _guarded_step(self, opt, loss_parts: dict[str, torch.Tensor]) -> None:
        """Clip and step, unless the guard finds a non-finite loss or gradient (as the GAN loop's steps)."""
        # Under fp16 loss scaling an overflowing gradient is routine and the scaler skips that step itself: only the
        # loss is the guard's to judge then.
        parameters = () if grad_scaler(self.trainer) is not None else self.net.parameters()
        guarded_step(self, opt, self.guard, "VAE", self.trainer.global_step, loss_parts, parameters, self.grad_clip_val)

    def on_validation_epoch_start(self) -> None:
        # A private stream: measuring does not move training's random draws, and the same weights give the same bpd.
        self._val_rng = torch.Generator(self.device).manual_seed(self.val_seed + self.global_rank)
        self._val_moments = [torch.zeros(self.latent_dim, device=self.device) for _ in range(2)] + [
            torch.zeros((), device=self.device)
        ]

    def validation_step(self, batch, batch_idx: int) -> None:
        images, _ = batch
        count = images.shape[0]
        log_px, kl_dims, mean = self.elbo_parts(images, self.likelihood.discrete_log_prob, self._val_rng)
        kl = kl_dims.sum(1)
        elbo = log_px - kl
        logs = {
            "val/elbo": elbo.mean(),
            "val/recon": -log_px.mean(),
            "val/kl": kl.mean(),
            "val/bpd": bits_per_dim(elbo, images[0].numel()).mean(),
        }
        self.log_dict(logs, batch_size=count, sync_dist=True, prog_bar=False)
        # The images before this batch: the first iw_images of this rank's share get the tighter bound too.
        if batch_idx * count < self.iw_images:
            bound = self.importance_weighted_log_likelihood(images, self.iw_samples, self._val_rng)
            self.log("val/bpd_iw", bits_per_dim(bound, images[0].numel()).mean(), batch_size=count, sync_dist=True)
        sums, squares, seen = self._val_moments
        sums += mean.sum(0)
        squares += mean.pow(2).sum(0)
        seen += count

    def on_validation_epoch_end(self) -> None:
        # Summed over the ranks: the covariance is over the whole validation split.
        sums, squares, seen = (self.trainer.strategy.reduce(t, reduce_op="sum") for t in self._val_moments)
        if seen > 0:
            self.log("val/active_units", active_units(sums, squares, seen, ACTIVE_THRESHOLD))

    @torch.no_grad()
    def importance_weighted_log_likelihood(
        self, images: torch.Tensor, k: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Burda et al.'s k-sample bound on log P(images) per image (nats; the discrete data's likelihood), with
        z_i ~ q(z | x) drawn from ``generator`` (on the module's device). k = 1 is a one-sample ELBO."""
        mean, logvar = (t.float() for t in self.net.encode(images))
        log_weights = []
        for start in range(0, k, IW_CHUNK):
            n = min(IW_CHUNK, k - start)
            noise = torch.randn((n, *mean.shape), device=mean.device, generator=generator)
            z = mean + torch.exp(0.5 * logvar) * noise  # n x B x L
            out = self.net.decode(z.flatten(0, 1))
            log_px = self.likelihood.discrete_log_prob(out, images.repeat(n, 1, 1, 1)).view(n, -1)
            zeros = torch.zeros_like(z)
            log_prior = log_normal(z, zeros, zeros).sum(-1)
            log_posterior = log_normal(z, mean, logvar).sum(-1)
            log_weights.append(log_px + log_prior - log_posterior)
        return importance_weighted_bound(torch.cat(log_weights))

    @torch.no_grad()
    def bits_per_dim(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-image bounds in bits per dimension (``bpd_meaning``): the ELBO's (one posterior sample, the KL in
        closed form) and the importance-weighted one with ``iw_samples`` samples; in eval mode."""
        dims = images[0].numel()
        with eval_mode(self.net):
            log_px, kl_dims, _ = self.elbo_parts(images, self.likelihood.discrete_log_prob, generator)
            elbo = log_px - kl_dims.sum(1)
            bound = self.importance_weighted_log_likelihood(images, self.iw_samples, generator)
        return {"bpd": bits_per_dim(elbo, dims), "bpd_iw": bits_per_dim(bound, dims)}

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] decoded from latents (the likelihood's mean); ``labels`` are ignored."""
        with eval_mode(self.net):
            return self.likelihood.mean(self.net.decode(z.to(self.device)))

    def generate_for_metrics(self, n: int, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        # Prior draws from the caller's (CPU) generator: the same seed gives the same images on any device.
        return self.generate(torch.randn(n, self.latent_dim, generator=generator))

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """The decoded posterior mean of each image, as the reconstruction grid shows it."""
        with eval_mode(self.net):
            mean, _ = self.net.encode(images.to(self.device))
            return self.likelihood.mean(self.net.decode(mean))
