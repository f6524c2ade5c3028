"""The adversarial training loop (``AdversarialModule``) and the latent-to-image GAN that it trains (``GANModule``).

Manual optimization, because a GAN alternates two optimizers on two objectives. Each
``training_step`` takes one real batch and makes one D update; every ``n_critic``-th D update is
followed by one G update. Every critic update therefore sees fresh real data (as in WGAN-GP's
algorithm), and an epoch means one pass of D over the data whatever ``n_critic`` is.

Lightning's ``trainer.global_step`` counts every ``optimizer.step()`` (D and G alike), so the module
keeps its own ``g_step`` / ``d_step`` counters, saved in the checkpoint, for the schedule and logs.

A model says what G produces from a batch, and which extra terms G's loss has, in ``make_fakes``: the
``GANModule`` maps latents to images, the VQGAN image tokenizer (``parti_exp.models.vqgan``) reconstructs the batch,
the image-to-image models (``parti_exp.models.image_to_image``) translate an input made from it, passing D its
condition where a conditional GAN passes labels.
``adversarial_weight`` can switch the adversarial game off (no D update, no adversarial term) for a warm-up.

Options any model can switch on from its config: a moving average of G's weights (``ema``) used for all
sampling, differentiable augmentation of D's inputs (``augment``: DiffAugment, or ADA, whose strength the D update
adjusts through ``AdaptsToDiscriminator.observe``), and learning-rate schedules stepped
once per G or D step (``g_scheduler`` / ``d_scheduler``).
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Callable, Mapping

import torch
from lightning.pytorch import LightningModule
from torch import nn

from parti_exp.errors import ConfigError
from parti_exp.models.gan.ema import EMA
from parti_exp.models.gan.losses import AdversarialLoss
from parti_exp.models.gan.truncation import MEAN_W_LATENTS, MEAN_W_SEED, redraw_beyond, truncate_w, truncation_threshold
from parti_exp.protocols import (
    AdaptsToDiscriminator,
    ClassMixingGenerator,
    GeneratorRegularizer,
    ImageGenerator,
    Regularizer,
    StyleGenerator,
)
from parti_exp.runtime.distributed import seed_per_rank
from parti_exp.runtime.guard import NonFiniteGuard, guarded_step
from parti_exp.runtime.schedule import logged_this_step
from parti_exp.runtime.torch_utils import eval_mode, frozen, loss_scale
from parti_exp.runtime.validation import is_int_at_least, require

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
Augment = Callable[[torch.Tensor], torch.Tensor]

log = logging.getLogger(__name__)


class AdversarialModule(LightningModule):
    """G against D: the optimizers, the n_critic schedule, EMA, augmentation, penalties, clipping and the guard.
    A subclass implements ``make_fakes``."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: AdversarialLoss,
        g_optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        regularizers: Mapping[str, Regularizer] | None = None,
        n_critic: int = 1,
        grad_clip_val: float | None = None,
        ema: EMA | None = None,
        augment: Augment | None = None,
        g_scheduler: SchedulerFactory | None = None,
        d_scheduler: SchedulerFactory | None = None,
        guard: NonFiniteGuard | None = None,
        g_regularizers: Mapping[str, GeneratorRegularizer] | None = None,
    ) -> None:
        super().__init__()
        require(is_int_at_least(n_critic, 1), "model.n_critic", f"must be an integer >= 1, got {n_critic!r}")
        require(grad_clip_val is None or grad_clip_val > 0, "model.grad_clip_val",
                f"must be > 0 or null, got {grad_clip_val}")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.regularizers = dict(regularizers or {})
        # A ModuleDict, so G's penalties' running state (path length's mean) is in the checkpoint.
        self.g_regularizers = nn.ModuleDict(dict(g_regularizers or {}))
        for regularizer in self.g_regularizers.values():
            regularizer.check(generator)
        self.g_optimizer_factory = g_optimizer
        self.d_optimizer_factory = d_optimizer
        self.n_critic = n_critic
        self.grad_clip_val = grad_clip_val
        self.ema = ema
        # Registered as a submodule so the checkpoint holds it; None when EMA is off.
        self.generator_ema = None if ema is None else ema.copy_of(generator)
        self.augment = augment
        self.g_scheduler_factory = g_scheduler
        self.d_scheduler_factory = d_scheduler
        self.guard = guard
        self.g_step = 0
        self.d_step = 0
        # Data-parallel wrappers of the nets, set by PerNetDDPStrategy. A plain dict is not registered as
        # a submodule, so state_dict keys stay those of the bare nets whatever the strategy.
        self._replicas: dict[str, nn.Module] = {}

    def distribute(self, wrap: Callable[[nn.Module], nn.Module] | None) -> None:
        """Train G and D through ``wrap(net)`` (e.g. each in its own DistributedDataParallel); None undoes it."""
        self._replicas = {} if wrap is None else {"g": wrap(self.generator), "d": wrap(self.discriminator)}

    def compile_nets(self) -> None:
        """torch.compile G and D in place (``nn.Module.compile`` keeps the state_dict keys, so checkpoints stay
        loadable without compiling). A D whose regularizers differentiate through it twice (gradient penalty, R1)
        stays eager: torch.compile does not support double backward."""
        if self.g_regularizers:
            log.warning("compile=true: the generator stays eager because its regularizers (%s) need double "
                        "backward, which torch.compile does not support", ", ".join(self.g_regularizers))
        else:
            self.generator.compile()
        if self.regularizers:
            log.warning(
                "compile=true: the discriminator stays eager because its regularizers (%s) need double backward, "
                "which torch.compile does not support; the generator is compiled",
                ", ".join(self.regularizers),
            )
        else:
            self.discriminator.compile()

    def on_fit_start(self) -> None:
        seed_per_rank(self.trainer)

    def configure_optimizers(self):
        """``[G's optimizer, D's optimizer]``, followed by a list of LR schedulers when the config has any."""
        optimizers = [
            self.g_optimizer_factory(self.generator.parameters()),
            self.d_optimizer_factory(self.discriminator.parameters()),
        ]
        factories = (self.g_scheduler_factory, self.d_scheduler_factory)
        # Stepped by hand after each step of their optimizer; "step" tells LearningRateMonitor so.
        schedulers = [
            {"scheduler": self._scheduler(factory, optimizer, net), "interval": "step"}
            for optimizer, factory, net in zip(optimizers, factories, "gd")
            if factory is not None
        ]
        return (optimizers, schedulers) if schedulers else optimizers

    def _scheduler(
        self, factory: SchedulerFactory, optimizer: torch.optim.Optimizer, net: str
    ) -> torch.optim.lr_scheduler.LRScheduler:
        # A schedule over the whole run (LinearLR, PolynomialLR) leaves total_iters null in the config
        # and gets the number of steps this net will make; an explicit total_iters is kept.
        if isinstance(factory, functools.partial) and factory.keywords.get("total_iters", 0) is None:
            d_steps = self._planned_d_steps()
            return factory(optimizer, total_iters=d_steps if net == "d" else d_steps // self.n_critic)
        return factory(optimizer)

    def _planned_d_steps(self) -> int:
        """D steps in this fit: one per batch, but Lightning's max_steps counts D and G steps together."""
        d_steps = self.trainer.estimated_stepping_batches
        if self.trainer.max_steps != -1:
            d_steps = min(d_steps, math.ceil(self.trainer.max_steps * self.n_critic / (self.n_critic + 1)))
        require(math.isfinite(d_steps), "an LR schedule over the run",
                "needs a finite run: set trainer.max_epochs or trainer.max_steps, or total_iters in "
                "model.g_scheduler / model.d_scheduler")
        return int(d_steps)

    def make_fakes(self, real: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        """What G makes for this batch, and the terms G's loss adds to the adversarial one."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_fakes")

    def adversarial_weight(self) -> float:
        """The adversarial term's weight in G's loss at this step; 0 also skips D's update."""
        return 1.0

    def discriminator_fakes(self, fakes: torch.Tensor) -> torch.Tensor:
        """The fakes D's update sees: this batch's (CycleGAN draws some from a pool of earlier ones instead)."""
        return fakes

    def training_step(self, batch, batch_idx: int) -> None:
        real, labels = batch
        opt_g, opt_d = self.optimizers()
        g_turn = (self.d_step + 1) % self.n_critic == 0
        adversarial = self.adversarial_weight()

        # G's forward is shared by both updates when G steps this time: D sees it detached, G's
        # update back-propagates through the same graph (as hand-written DCGAN loops do).
        with torch.set_grad_enabled(g_turn):
            fake, g_terms = self.make_fakes(real, labels)

        if adversarial > 0:
            logs = self._discriminator_update(opt_d, real, self.discriminator_fakes(fake.detach()), labels)
        else:
            logs = {}
            self.d_step += 1  # one batch, one D step slot, so the n_critic phase is unchanged
        if g_turn:
            logs.update(self._generator_update(opt_g, fake, labels, g_terms, adversarial))
        if not logged_this_step(self.trainer):
            return
        logs["train/g_step"] = float(self.g_step)
        shown = {k: v for k, v in logs.items() if k in ("train/d_loss", "train/g_loss")}
        self.log_dict(shown, prog_bar=True, on_step=True, on_epoch=False, batch_size=real.shape[0])
        rest = {k: v for k, v in logs.items() if k not in shown}
        self.log_dict(rest, on_step=True, on_epoch=False, batch_size=real.shape[0])

    def validation_step(self, batch, batch_idx: int) -> None:
        # D's mean logit on held-out real images: when it drifts away from its value on training reals
        # (train/d_real), D is memorising the training set (the overfitting signal of Karras et al. 2020).
        real, labels = batch
        logit = self.discriminator(real, labels).float().mean()
        self.log("val/d_real", logit, batch_size=real.shape[0], sync_dist=True)

    def _augmented(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.augment is None else self.augment(images)

    def _discriminator_update(self, opt, real, fake, labels) -> dict[str, torch.Tensor]:
        discriminator = self._replicas.get("d", self.discriminator)
        real, fake = self._augmented(real), self._augmented(fake)
        # No optimizer toggling: `fake` arrives detached, so G's parameters are not in this graph at all.
        real_logits = discriminator(real, labels)
        fake_logits = discriminator(fake, labels)
        loss = self.loss.d_loss(real_logits, fake_logits)
        logs = {"train/d_adv": loss.detach()}
        critic = lambda images: discriminator(images, labels)
        for name, regularizer in self.regularizers.items():
            # Lazy regularization: a penalty with `every` = k runs on one D step in k and scales itself.
            if self.d_step % regularizer.every:
                continue
            penalty = regularizer(critic, real, fake, grad_scale=loss_scale(self._trainer))
            logs[f"train/{name}"] = penalty.detach()
            loss = loss + penalty
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self._clipped_step(opt, "D", self.d_step, {k.removeprefix("train/"): v for k, v in logs.items()},
                           self.discriminator)
        if isinstance(self.augment, AdaptsToDiscriminator):
            logs.update(self.augment.observe(real_logits.detach(), self.d_step))
        self.d_step += 1
        if not self.regularizers:
            del logs["train/d_adv"]  # without penalties it is d_loss again, and each logged key costs time
        logs.update(
            {
                "train/d_loss": loss.detach(),
                "train/d_real": real_logits.detach().float().mean(),
                "train/d_fake": fake_logits.detach().float().mean(),
            }
        )
        return logs

    def _generator_update(self, opt, fake, labels, g_terms: dict, adversarial: float) -> dict[str, torch.Tensor]:
        # D frozen rather than Lightning's toggle_optimizer, which walks every parameter of both optimizers twice
        with frozen(self.discriminator):
            terms = dict(g_terms)
            if adversarial > 0:
                # The bare D, not its DDP wrapper: D's parameters get no gradient here, and a DDP forward would
                # make D's reducer wait for gradients that never come. G's gradients are reduced by G's wrapper.
                adversarial_loss = self.loss.g_loss(self.discriminator(self._augmented(fake), labels))
                terms["g_adv"] = adversarial_loss if adversarial == 1.0 else adversarial * adversarial_loss
            penalties = self._generator_penalties(fake.shape[0], labels)
            terms.update(penalties)
            loss = sum(terms.values())
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            detailed = bool(g_terms or penalties)
            parts = {"g_loss": loss, **terms} if detailed else {"g_loss": loss}
            self._clipped_step(opt, "G", self.g_step, parts, self.generator)
        self.g_step += 1
        if self.generator_ema is not None:
            images = fake.shape[0] * self.trainer.world_size
            self.ema.update(self.generator_ema, self.generator, images, images_seen=self.g_step * images)
        # Each term on its own when there are several (a plain GAN's loss is only the adversarial one).
        logs = {f"train/{name}": term.detach() for name, term in terms.items()} if detailed else {}
        return {**logs, "train/g_loss": loss.detach()}

    def _generator_penalties(self, batch_size: int, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """G's regularizers due at this G step (lazy: each on every ``every``-th), on the bare generator: they call
        its methods besides ``forward``, and their gradients join the adversarial term's in the same backward."""
        return {
            name: regularizer(self.generator, batch_size, labels, grad_scale=loss_scale(self._trainer))
            for name, regularizer in self.g_regularizers.items()
            if self.g_step % regularizer.every == 0
        }

    def _clipped_step(self, opt, net: str, step: int, loss_parts: dict, module: nn.Module) -> None:
        """Clip, step the optimizer and its schedule, unless the guard finds a non-finite loss or gradient."""
        parameters = module.parameters()
        if self.guard is not None and loss_scale(self._trainer) != 1.0:
            # Under fp16 loss scaling an overflowing gradient is routine, and so is a penalty taken from one:
            # the scaler skips such a step itself. Only the unscaled loss terms are the guard's to judge.
            parameters = ()
            penalties = (*self.regularizers, *self.g_regularizers)
            loss_parts = {name: part for name, part in loss_parts.items() if name not in penalties}
        if guarded_step(self, opt, self.guard, net, step, loss_parts, parameters, self.grad_clip_val):
            self._step_scheduler(opt)

    def _step_scheduler(self, opt) -> None:
        for config in self.trainer.lr_scheduler_configs:
            if config.scheduler.optimizer is opt.optimizer:
                config.scheduler.step()

    @property
    def progress_step(self) -> int:
        """G's updates: how far an adversarial run has come (``ReportsProgress``)."""
        return self.g_step

    def sampling_nets(self) -> tuple[str, ...]:
        """G's moving average when EMA is on (what every sampler draws with), else G (``NamesSamplingNets``)."""
        return ("generator",) if self.generator_ema is None else ("generator_ema",)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_steps"] = {"g_step": self.g_step, "d_step": self.d_step}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        steps = checkpoint.get("gan_steps", {})
        self.g_step = int(steps.get("g_step", 0))
        self.d_step = int(steps.get("d_step", 0))


class GANModule(AdversarialModule):
    """A GAN in the usual sense: G maps latents (and, for conditional nets, labels) to images."""

    family = "gan"

    def __init__(self, generator: nn.Module, *args, **kwargs) -> None:
        if not isinstance(generator, ImageGenerator):
            raise TypeError(f"{type(generator).__name__} must expose `latent_dim` to be used as a generator")
        super().__init__(generator, *args, **kwargs)

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, labels)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device, generator=generator)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from given latents, with the generator (its moving average when EMA is on) in
        eval mode (running BN stats)."""
        net = self._sampling_net
        with eval_mode(net):
            return net(z.to(self.device), None if labels is None else labels.to(self.device)).float()

    @torch.no_grad()
    def generate_truncated(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None,
        psi: float,
        rng: torch.Generator | None,
        mean_w: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``generate`` with the truncation trick (``parti_exp.models.gan.truncation``), the one rule the sample grid
        and ``python -m parti_exp.sample`` share: in w toward ``mean_w`` (default ``mean_w()``) when the generator has
        a style space, else BigGAN's redraw of z entries beyond the threshold, drawn from ``rng`` (None: the global
        stream; entries already within it are kept, so latents truncated beforehand draw nothing). ψ = 1 is
        ``generate``."""
        if psi >= 1.0:
            return self.generate(z, labels)
        if self.has_style_space:
            w = self.map_to_w(z)
            mean_w = self.mean_w() if mean_w is None else mean_w.to(w.device)
            return self.generate_from_w(truncate_w(w, mean_w, psi), labels)
        return self.generate(redraw_beyond(z, truncation_threshold(psi), rng), labels)

    @property
    def has_style_space(self) -> bool:
        """Whether the generator maps z to a w space (``map_to_w``, ``generate_from_w``, ``mean_w`` work)."""
        return isinstance(self._sampling_net, StyleGenerator)

    @torch.no_grad()
    def map_to_w(self, z: torch.Tensor) -> torch.Tensor:
        with eval_mode(self._sampling_net):
            return self._style_net.map_to_w(z.to(self.device))

    @torch.no_grad()
    def generate_from_w(
        self, w: torch.Tensor, labels: torch.Tensor | None = None, noise: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Images of w (B x w_dim, or B x num_ws x w_dim per layer); ``noise``: maps for the noise inputs in place of
        the fixed ones (a projected latent's)."""
        net = self._style_net
        labels = None if labels is None else labels.to(self.device)
        with eval_mode(net):
            if noise is None:
                return net.synthesis(w.to(self.device), labels).float()
            return net.synthesis(w.to(self.device), labels, [m.to(self.device) for m in noise]).float()

    @torch.no_grad()
    def mean_w(self, n: int = MEAN_W_LATENTS, seed: int = MEAN_W_SEED) -> torch.Tensor:
        """The mean of ``n`` mapped latents drawn from ``seed`` (CPU draw: the same mean on any device)."""
        return self.map_to_w(torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))).mean(0)

    @torch.no_grad()
    def generate_class_mix(self, z: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
        """Images for B x num_classes class weights (a mix of class embeddings) with a conditional generator."""
        net = self._sampling_net
        if not isinstance(net, ClassMixingGenerator):
            raise ConfigError(f"{type(net).__name__} is not class-conditional: it has no class embedding to mix")
        with eval_mode(net):
            return net.forward_class_weights(z.to(self.device), class_weights.to(self.device)).float()

    @property
    def num_classes(self) -> int | None:
        """The classes a conditional generator draws, None for an unconditional one."""
        net = self._sampling_net
        return net.num_classes if isinstance(net, ClassMixingGenerator) else None

    @property
    def sampling_generator(self) -> nn.Module:
        """The net that samples (G's moving average when EMA is on), for a caller that differentiates through it
        (the projector); it puts it in eval mode and leaves its weights alone."""
        return self._sampling_net

    @property
    def _sampling_net(self) -> nn.Module:
        return self.generator if self.generator_ema is None else self.generator_ema

    @property
    def _style_net(self) -> StyleGenerator:
        net = self._sampling_net
        if not isinstance(net, StyleGenerator):
            raise ConfigError(f"{type(net).__name__} has no w space: only a style generator (model=stylegan_lite) "
                              "maps z to w")
        return net

    def generate_for_metrics(self, n: int, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        # Latents from the caller's (CPU) generator: the same seed gives the same images on any device.
        return self.generate(torch.randn(n, self.latent_dim, generator=generator), labels)

    def make_fakes(self, real: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        return self._replicas.get("g", self.generator)(self.sample_latent(real.shape[0]), labels), {}
