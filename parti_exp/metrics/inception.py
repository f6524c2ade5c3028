"""torch-fidelity's InceptionV3: the TensorFlow-ported weights that published FID / IS / KID numbers use.

One forward pass gives both feature sets the metrics need: the 2048-d pool features (FID, KID) and the
1008 logits without the fc bias (IS; what torch-fidelity and torchmetrics use for IS by default).

Images smaller or larger than Inception's 299 px are resized first, by one of two rules (``metrics.resize``), which
give different FIDs for the same images (Parmar et al. 2022, "On Aliased Resizing and Surprising Subtleties in GAN
Evaluation", the clean-fid paper):

- ``legacy``: torch-fidelity's own bilinear resize of the float image, written to match TensorFlow 1.x's (no
  antialiasing), as the original TF FID code and the numbers of StudioGAN's legacy mode and torch-mimicry do.
- ``clean``: clean-fid's rule, PIL's bicubic resize of each channel as a float image, clipped to [0, 255]. The
  result is rounded to uint8 because torch-fidelity's network only takes uint8 images: within 0.5/255 of the float
  image clean-fid feeds its network.

At 299 px neither rule changes the image, so the two give the same features.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from parti_exp.errors import BadDataError, MissingInputError
from parti_exp.runtime.checkpoints import load_checkpoint_file
from parti_exp.runtime.validation import require

FEATURE_NAME = "inception-v3-compat"  # torch-fidelity's registry name for this network
INPUT_SIZE = 299
RESIZE_RULES = ("legacy", "clean")


def clean_resize(images: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 ``N x C x H x W`` -> uint8 ``N x C x size x size`` by clean-fid's rule: each channel as a float32 PIL
    image, bicubic, clipped to [0, 255] (then rounded: see the module's docstring). On the CPU, as PIL runs there."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    planes = images.cpu().numpy().astype(np.float32)
    out = np.empty((*planes.shape[:2], size, size), dtype=np.float32)
    for i, image in enumerate(planes):
        for c, plane in enumerate(image):
            # A 2-d float32 array is a PIL "F" image: the resize is computed in float, not on 8-bit values.
            out[i, c] = np.asarray(Image.fromarray(plane).resize((size, size), Image.Resampling.BICUBIC))
    return torch.from_numpy(np.rint(out.clip(0, 255)).astype(np.uint8)).to(images.device)


def default_weights_path() -> Path:
    """Where torch-fidelity's own download puts the weights (``torch.hub.load_state_dict_from_url``):
    ``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``, so both share one copy."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(URL_INCEPTION_V3).path).name


class MissingWeightsError(MissingInputError):
    """The InceptionV3 weights cannot be had. ``problem`` says where they were looked for and how to provide them;
    the message adds what a training run can do instead, and a command for which that is no advice
    (``evaluate``) says its own with ``problem``."""

    TRAIN_ALTERNATIVE = (" Without them, train with metrics=none (no FID/IS/KID), or measure offline in a feature "
                         "space trained here: metrics=scorer metrics.scorer_ckpt=<a model=contrastive run>, or on "
                         "labelled data metrics=classifier.")

    def __init__(self, problem: str) -> None:
        super().__init__(problem + self.TRAIN_ALTERNATIVE)
        self.problem = problem


def resolve_weights(weights_path: str | Path | None) -> Path:
    """The weights file to load: ``weights_path`` if given, else torch-fidelity's cached copy, downloaded if absent.

    Raises FileNotFoundError, naming the path to fill and the keys to set, when the file cannot be had
    (no network): called when the metrics are built, so a run fails before its first training step.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise MissingWeightsError(
                f"metrics.weights_path={weights_path} does not exist. Point it at torch-fidelity's InceptionV3 "
                f"weights ({URL_INCEPTION_V3}), or set metrics.weights_path=null to use {default_weights_path()} "
                "(downloaded there when there is network)."
            )
        return path
    path = default_weights_path()
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(path), progress=False)
    except OSError as error:  # URLError, socket errors, unwritable cache dir
        raise MissingWeightsError(
            f"The InceptionV3 weights for FID/IS/KID are not at {path} and could not be downloaded from "
            f"{URL_INCEPTION_V3} ({error}). Copy that file to {path} (the directory follows $TORCH_HOME), or set "
            "metrics.weights_path=/path/to/weights-inception-2015-12-05-6726825d.pth."
        ) from error
    return path


class InceptionFeatures(nn.Module):
    """uint8 images (1 or 3 channels, any size) -> (2048-d pool features, 1008 unbiased logits), one pass.

    ``resize="legacy"``: torch-fidelity resizes to 299 px with TensorFlow 1.x's bilinear rule internally, as the
    reference code did; ``"clean"``: clean-fid's PIL bicubic first (``clean_resize``).
    """

    feature_dim = 2048
    num_logits = 1008

    def __init__(self, weights_path: str | Path, resize: str = "legacy") -> None:
        super().__init__()
        require(resize in RESIZE_RULES, "metrics.resize", f"must be one of {RESIZE_RULES}, got {resize!r}")
        self.resize = resize
        # torch-fidelity unpickles the file with full pickle (its torch.load is not weights-only): it is first read
        # here as data (memory-mapped, so cheap), which refuses a file holding pickled code unless the user trusts it.
        load_checkpoint_file(weights_path, key="metrics.weights_path", mmap=True)
        try:
            self.net = FeatureExtractorInceptionV3(
                FEATURE_NAME, ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights_path)
            )
        except (RuntimeError, KeyError, EOFError, ValueError) as error:  # what torch.load / load_state_dict raise
            raise BadDataError(
                f"{weights_path} is not torch-fidelity's InceptionV3 state dict ({error}); "
                f"get the file from {URL_INCEPTION_V3}"
            ) from error
        # Channels-last convolutions: 1.6x faster on a CPU here (oneDNN), and the layout tensor cores want.
        self.net.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.resize == "clean":
            images = clean_resize(images)  # before the grey->RGB expansion: a third of the work
        if images.shape[1] == 1:
            # Grayscale as RGB, exactly as torch-fidelity reads a grayscale PNG (PIL convert("RGB")).
            images = images.expand(-1, 3, -1, -1)
        features, logits = self.net(images)
        return features, logits


def random_weights_file(path: str | Path, seed: int = 0) -> Path:
    """Save a randomly initialised InceptionV3 state dict in torch-fidelity's format to ``path``.

    For offline tests and benchmarks: the real feature-extraction code runs, only the weights are random.
    Convolutions get He initialisation so activations keep their scale through the 90-odd layers
    (PyTorch's default init shrinks them towards zero, which would make every distance vanish).
    """

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the fresh initialisation
            return None

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({}, path)  # the constructor insists on reading a file; Unloaded ignores what it reads
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Unloaded(FEATURE_NAME, ["2048"], feature_extractor_weights_path=str(path))
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path
