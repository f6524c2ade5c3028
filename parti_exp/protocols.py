"""Every capability a module can have, and every role a net or a part plays for the module that trains it, in one
file. A caller asks for a capability (``isinstance(module, MakesImagesForMetrics)``), never for a class.

This module defines interfaces only and imports nothing of the package, so every layer may use it: the DDP strategy
(``parti_exp.runtime``) asks whether a module distributes its nets, the metrics callback whether it makes images for
the metrics, without depending on any model.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import nn

# --- What a LightningModule of ours can do -------------------------------------------------------------------------


@runtime_checkable
class ReportsProgress(Protocol):
    """How far training has come, the step that "every N steps" counts: G's updates for an adversarial module
    (Lightning's ``global_step`` counts D's and G's together), optimizer steps for any other. Every module has it."""

    @property
    def progress_step(self) -> int: ...


@runtime_checkable
class HasFamily(Protocol):
    """The model family, which picks the module's sampler in ``parti_exp.inference.samplers`` (``gan``, ``vae``,
    ``vqgan``, ``text_to_image``, ``contrastive``, ``image_to_image``)."""

    family: str


@runtime_checkable
class CountsTrainingImages(Protocol):
    """A DataModule that says how many images its training split holds (a model card's data size)."""

    def training_images(self) -> int: ...


@runtime_checkable
class NamesSamplingNets(Protocol):
    """The nets a module's samples need, as the names of its attributes (their ``state_dict`` prefixes): a model
    folder holds their weights and no others (``parti_exp.runtime.model_folder``). The moving average where a module
    keeps one, not the last iterate; never a critic or an optimizer's state."""

    def sampling_nets(self) -> tuple[str, ...]: ...


@runtime_checkable
class CompilesNets(Protocol):
    def compile_nets(self) -> None:
        """torch.compile the module's nets in place."""


@runtime_checkable
class DistributesNets(Protocol):
    def distribute(self, wrap: Callable[[nn.Module], nn.Module] | None) -> None:
        """Train each net through ``wrap(net)`` (e.g. each in its own DistributedDataParallel); None undoes it."""


@runtime_checkable
class MakesImagesForMetrics(Protocol):
    """What the metrics need from a trained model (the GANs, the VAE and the text-to-image module have it)."""

    device: torch.device

    def generate_for_metrics(self, n: int, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """``n`` images in [-1, 1], of the classes ``labels`` (``n`` labels; None for unlabelled data), with every
        random draw taken from ``generator`` (a CPU generator), so the same seed gives the same images."""
        ...


@runtime_checkable
class BoundsLikelihood(Protocol):
    """A model that bounds its likelihood (the VAE): ``python -m parti_exp.evaluate`` reports its bits per
    dimension next to FID."""

    device: torch.device

    def bits_per_dim(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-image bounds in bits per dimension of a batch in [-1, 1], by name (``bpd``: the ELBO's, ``bpd_iw``:
        the importance-weighted one), every random draw from ``generator`` (on the model's device)."""
        ...

    @property
    def bpd_meaning(self) -> str:
        """What a dimension and its bits are for this model's likelihood, in words."""
        ...


@runtime_checkable
class LatentImageModel(Protocol):
    """What the tools that draw from latents ask of a trained model: the fixed-latent sample grid, and
    ``python -m parti_exp.sample``'s plain samples and interpolation (``parti_exp.inference.latent``). The GANs and
    the VAE both decode standard normal latents into images; only a GAN with a style space (``has_style_space``) or
    class embeddings (``num_classes``) offers the tools that need them."""

    latent_dim: int
    # True only for a GAN whose generator maps z to w (map_to_w, generate_from_w, mean_w).
    has_style_space: bool
    # The classes a conditional model draws, None for an unconditional one.
    num_classes: int | None

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from ``B x latent_dim`` latents (labels ignored by unconditional models), in eval
        mode."""
        ...


@runtime_checkable
class TruncatesLatents(Protocol):
    """The truncation trick (the GANs; ``parti_exp.models.gan.truncation``)."""

    def generate_truncated(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None,
        psi: float,
        rng: torch.Generator | None,
        mean_w: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``generate`` with ψ < 1 traded diversity for fidelity; ψ = 1 is ``generate``."""
        ...


@runtime_checkable
class SamplesForPrompts(Protocol):
    """A text-to-image model (``model=parti``, ``model=muse``): images for any prompts. What ``python -m
    parti_exp.sample prompts=...``, reranking and the caption accuracy, scene accuracy, CLIP-score and prompt-grid
    callbacks ask of it, whatever its decoder."""

    device: torch.device
    # The model's own sampling settings: a dataclass whose ``guidance_scale`` of 1 is the conditional model, so
    # ``dataclasses.replace(sampling, guidance_scale=1.0)`` samples unguided with any decoder.
    sampling: Any

    def use_captions(self, source: Any) -> None:
        """Caption with the data's caption source (the labels' captions for the metrics)."""

    def sample_images(
        self, captions: list[str], sampling: Any = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One image in [-1, 1] per caption, drawn with ``sampling`` (None: the model's) from ``generator``."""


@runtime_checkable
class Translates(Protocol):
    """An image-to-image model (pix2pix, CycleGAN): ``python -m parti_exp.translate`` maps images through it.
    ``directions`` names the ways it translates (``("a_to_b",)`` for pix2pix, both ways for CycleGAN); ``task`` says
    what an input is and how one is made from an image a user gives (``TranslationTask``)."""

    directions: tuple[str, ...]

    def task_for(self, direction: str) -> "TranslationTask": ...

    def translate(self, inputs: torch.Tensor, direction: str) -> torch.Tensor:
        """Outputs in [-1, 1] for a batch of inputs as ``task_for(direction)`` makes them, in eval mode."""
        ...


@runtime_checkable
class NamesItsValidationLoss(Protocol):
    """A module that logs one validation loss, ``val/<loss_name>`` (``ce`` of model=parti, ``masked_ce`` of
    model=muse): the best-checkpoint callback keeps the epoch where it is lowest."""

    loss_name: str


@runtime_checkable
class FillsMaskedTokens(SamplesForPrompts, Protocol):
    """A text-to-image model over an image tokenizer's codes that can draw some codes while keeping the others
    (``python -m parti_exp.edit``): a raster-order decoder sees the kept codes before a drawn one, a masked-token
    decoder all of them."""

    @property
    def token_grid(self) -> tuple[int, int]:
        """``(h, w)``: an image is ``h * w`` codes in raster order."""
        ...

    def image_codes(self, images: torch.Tensor) -> torch.Tensor:
        """``B x N`` codes of images in [-1, 1]."""
        ...

    def decode_codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] of ``B x N`` codes."""
        ...

    def sample_images(
        self,
        captions: list[str],
        sampling: Any = None,
        generator: torch.Generator | None = None,
        forced: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """As ``SamplesForPrompts``; with ``forced`` codes (``B x N``) kept where ``keep`` (``B x N`` bool) is set."""
        ...


@runtime_checkable
class ShowsTranslations(Protocol):
    """A translator's epoch grid (``parti_exp.callbacks.translation_grid``)."""

    def translation_examples(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        """Rows of images of one shape made from held-out ``images`` (a batch as the data serves it, in [-1, 1]),
        drawn top to bottom: pix2pix's inputs, outputs and targets."""
        ...


@runtime_checkable
class TranslationTask(Protocol):
    """What an image-to-image model learns (``parti_exp.models.image_to_image.tasks``): how a training batch becomes
    (input, target) on the device, what the input looks like (``input_channels`` x ``input_size``; ``image_channels``
    of it are an image, the rest a mask), the naive output every model must beat (``baseline``), and the model input
    made from an image a user gives (``model_input``)."""

    name: str
    channels: int
    img_size: int
    input_channels: int
    image_channels: int
    input_size: int
    upscale: int
    takes_mask: bool
    random: bool

    def pair(self, images: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def finish(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor: ...

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor: ...

    def model_input(self, images: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor: ...

    def show(self, inputs: torch.Tensor) -> torch.Tensor: ...

    def generator(self, device: torch.device | str, *stream: object) -> torch.Generator: ...

    def describe(self) -> dict: ...


# --- What a data module serves ---------------------------------------------------------------------------------------


@runtime_checkable
class ServesImagePairs(Protocol):
    """A data module whose items are two images of one size stacked as channels: ``[:, :C]`` from domain A (the
    input), ``[:, C:]`` from domain B (the target). ``aligned``: each B is its A's partner (``data=paired``), or the
    two are drawn independently (``data=unpaired``, ``data=digit_styles``). Its splits' ``images`` are the B side,
    what outputs are compared with; ``sources`` the A side. ``val_aligned``: the same for the validation split
    (``data=digit_styles`` trains on unpaired halves and validates on known pairs)."""

    aligned: bool
    val_aligned: bool


# --- What a module asks of the nets it trains (``parti_exp.nets``) --------------------------------------------------
# Unconditional nets ignore ``labels``; the training loop always passes them, so a conditional net needs no change
# to the loop.


@runtime_checkable
class ImageGenerator(Protocol):
    """``forward(z, labels=None)`` -> ``B x C x H x W`` images in [-1, 1] (DCGAN, ResNet, conditional ResNet,
    StyleGAN-lite)."""

    latent_dim: int

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class StyleGenerator(Protocol):
    """A generator with a style space: ``map_to_w(z)`` -> w and ``synthesis(w, labels)``; it can be truncated in w."""

    latent_dim: int

    def map_to_w(self, z: torch.Tensor) -> torch.Tensor: ...

    def synthesis(self, w: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class LayeredStyleGenerator(StyleGenerator, Protocol):
    """A style generator with one w per layer (W+): ``styles(z)`` -> ``B x num_ws x w_dim`` (style-mixed in training
    mode), which ``synthesis`` takes as well as ``B x w_dim``; ``noise_inputs`` lists its per-layer noise inputs,
    each with a ``fixed`` map, and ``synthesis(w, labels, noise)`` takes one map per input in their place."""

    num_ws: int

    def styles(self, z: torch.Tensor) -> torch.Tensor: ...

    @property
    def noise_inputs(self) -> list[nn.Module]: ...


@runtime_checkable
class HasImageFeatures(Protocol):
    """A discriminator whose penultimate activations can be read: ``features(images)`` -> ``B x F`` (the projector's
    ``distance=discriminator``)."""

    def features(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ClassMixingGenerator(Protocol):
    """A class-conditional generator that can be shown between classes: ``forward_class_weights(z, B x num_classes
    weights)``."""

    num_classes: int

    def forward_class_weights(self, z: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ImageTokenizer(Protocol):
    """An autoencoder with a quantised bottleneck (the VQGAN): ``encode(images)`` -> ``B x h x w`` code indices on a
    ``token_grid`` of ``codebook_size`` codes, ``decode(indices)`` -> images, and ``forward(images, labels=None)`` ->
    ``(reconstructions, Quantized)`` for training."""

    token_grid: tuple[int, int]
    codebook_size: int

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, indices: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ImageEmbedder(Protocol):
    """``forward(images)`` -> ``B x dim`` features of ``channels x img_size x img_size`` images: the image tower of
    the contrastive scorer."""

    img_size: int
    channels: int
    dim: int

    def forward(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class VariationalAutoencoder(Protocol):
    """``encode(images)`` -> the mean and log-variance of a diagonal Gaussian posterior (``B x latent_dim`` each),
    ``decode(z)`` -> the parameters of p(x | z) per pixel, which the VAE's likelihood reads."""

    latent_dim: int

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


# --- Parts of a module ----------------------------------------------------------------------------------------------

Critic = Callable[[torch.Tensor], torch.Tensor]


class Regularizer(Protocol):
    """A discriminator penalty (``parti_exp.models.gan.regularizers``), applied on every ``every``-th D step."""

    every: int

    def __call__(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, grad_scale: float = 1.0) -> torch.Tensor:
        ...


class GeneratorRegularizer(Protocol):
    """A generator penalty (``PathLengthPenalty``), an ``nn.Module`` so that its running state is in the
    checkpoint, added to G's loss on every ``every``-th G step. ``check(generator)`` refuses a generator it cannot
    regularise (a ``ConfigError``) when the module is built."""

    every: int

    def check(self, generator: nn.Module) -> None: ...

    def __call__(
        self, generator: nn.Module, batch_size: int, labels: torch.Tensor | None, grad_scale: float = 1.0
    ) -> torch.Tensor: ...


@runtime_checkable
class AdaptsToDiscriminator(Protocol):
    """An augmentation of D's inputs whose strength follows D (ADA, ``parti_exp.models.gan.ada``): the adversarial
    loop shows it D's logits on the real batch after each D update, and logs what it returns."""

    def observe(self, real_logits: torch.Tensor, d_step: int) -> dict[str, torch.Tensor]: ...


class TextTokenizer(Protocol):
    """Captions -> ``(ids, mask)`` (``parti_exp.models.text_to_image.text_tokenizer``)."""

    max_len: int

    @property
    def vocab_size(self) -> int: ...

    def encode(self, captions: list[str], warn: bool = False) -> tuple[torch.Tensor, torch.Tensor]: ...

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, ids: torch.Tensor) -> list[str]: ...

    def state_dict(self) -> dict[str, Any]: ...
