"""What an image-to-image model learns (``task=``): how each training batch becomes (input, target), on the device.

The synthetic tasks make the input from the dataset's own images, which stay the target: ``super_resolution``
(box or bicubic down-sampling by ``scale``), ``denoise`` (Gaussian noise of ``sigma`` on the [0, 1] pixel scale),
``deblur`` (a Gaussian kernel of ``sigma`` px), ``inpaint`` (random boxes blanked, the mask as an extra input
channel), ``colorize`` (RGB data only: the input is the luma). ``paired`` (``ImageTranslation``) reads real pairs
from a data module that serves them (``data=paired``).

Random degradations draw from a ``torch.Generator`` on the batch's device that ``generator`` seeds from the task's
``seed`` (the run's) and a stream, e.g. (``"train"``, rank, D step): the input made from a batch is a function of
where the batch is in the run, so a resumed run draws exactly the inputs the uninterrupted one would have, and the
validation inputs are the same at every epoch.

Every task also says which output is the floor to beat (``baseline``: bicubic upsampling, the noisy or blurred
input, holes filled with the image's mean, the luma as grey), how an output is finished (``finish``: inpainting
keeps the known pixels) and how to make the model input from an image a user gives (``model_input``).
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F

from parti_exp.errors import ConfigError
from parti_exp.protocols import ServesImagePairs
from parti_exp.runtime.validation import is_int_at_least, require

# ITU-R BT.601 luma weights (what PIL's convert("L") uses), so a grey file a user gives is the input training saw.
LUMA = (0.299, 0.587, 0.114)
# The value of inpainting's missing pixels in [-1, 1]: mid-grey, neither ink nor paper.
HOLE_FILL = 0.0


class Task:
    """A task for images of ``channels`` x ``img_size`` x ``img_size``; a subclass says how to degrade them."""

    name = "task"
    upscale = 1
    takes_mask = False
    random = False  # whether ``degrade`` draws from its generator

    def __init__(self, img_size: int, channels: int, seed: int = 0) -> None:
        require(is_int_at_least(img_size, 2), "data.img_size", f"must be an integer >= 2, got {img_size!r}")
        require(channels in (1, 3), "data.channels", f"must be 1 or 3, got {channels!r}")
        self.img_size = img_size
        self.channels = channels
        self.seed = seed

    @property
    def input_size(self) -> int:
        return self.img_size // self.upscale

    @property
    def image_channels(self) -> int:
        """Channels of the image part of the input (the mask, if any, comes on top)."""
        return self.channels

    @property
    def input_channels(self) -> int:
        return self.image_channels + int(self.takes_mask)

    def generator(self, device: torch.device | str, *stream: object) -> torch.Generator:
        """A generator on ``device`` seeded from the task's seed and ``stream`` (e.g. ``"train", rank, step``)."""
        digest = hashlib.blake2b(repr((self.seed, *stream)).encode(), digest_size=8).digest()
        return torch.Generator(device=device).manual_seed(int.from_bytes(digest, "little") >> 1)

    def check_data(self, datamodule: object) -> None:
        """ConfigError unless ``datamodule`` serves what this task reads: plain images for a synthetic task."""
        if isinstance(datamodule, ServesImagePairs):
            raise ConfigError(f"task={self.name} makes its inputs from plain images, but the data serves pairs of "
                              "images: use task=paired with data=paired, or a dataset of single images")

    def pair(self, images: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) from a batch in [-1, 1] as the data module serves it."""
        return self.degrade(images, generator), images

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement degrade")

    def finish(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The translator's outputs as the task delivers them (most tasks: as they are)."""
        return outputs

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        """The naive output for ``inputs``, at the target's shape: the floor a model must beat."""
        return inputs

    def model_input(self, images: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The model input for ``B x image_channels x input_size x input_size`` images in [-1, 1] a user gives
        (``mask``: ``B x 1 x H x W``, True = missing, for a task that takes one)."""
        return images

    def show(self, inputs: torch.Tensor) -> torch.Tensor:
        """The image part of ``inputs`` at the output's shape, for grids and sheets: a small input repeated up to
        the output's size (nearest neighbour: each input pixel a block), a grey one in every colour channel."""
        image = inputs[:, : self.image_channels].float()
        if image.shape[-1] != self.img_size:
            image = F.interpolate(image, size=self.img_size, mode="nearest")
        return image.expand(-1, self.channels, -1, -1) if image.shape[1] != self.channels else image

    def describe(self) -> dict:
        """The task's settings, for manifests and reports."""
        return {"task": self.name, "input": [self.input_channels, self.input_size, self.input_size]}


class SuperResolution(Task):
    """Input: the image down-sampled by ``scale`` (``downsample``: ``box``, the mean of each scale x scale block, or
    ``bicubic``, antialiased). Baseline: bicubic upsampling of the input."""

    name = "super_resolution"
    DOWNSAMPLES = ("box", "bicubic")

    def __init__(self, img_size: int, channels: int, scale: int = 4, downsample: str = "box", seed: int = 0) -> None:
        super().__init__(img_size, channels, seed)
        require(scale in (2, 4, 8), "task.scale", f"must be 2, 4 or 8, got {scale!r}")
        require(downsample in self.DOWNSAMPLES, "task.downsample", f"must be one of {self.DOWNSAMPLES}, got "
                f"{downsample!r}")
        require(img_size % scale == 0 and img_size // scale >= 2, "task.scale",
                f"={scale} must divide data.img_size={img_size} into an input of at least 2 px")
        self.upscale = scale
        self.downsample = downsample

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.downsample == "box":
            return F.avg_pool2d(images, self.upscale)
        small = F.interpolate(images, size=self.input_size, mode="bicubic", antialias=True, align_corners=False)
        return small.clamp(-1, 1)

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.interpolate(inputs, scale_factor=self.upscale, mode="bicubic", align_corners=False).clamp(-1, 1)

    def describe(self) -> dict:
        return {**super().describe(), "scale": self.upscale, "downsample": self.downsample}


class Denoise(Task):
    """Input: the image plus Gaussian noise of standard deviation ``sigma`` on the [0, 1] pixel scale, clipped to
    the pixel range as an image file would be. Baseline: the noisy input."""

    name = "denoise"
    random = True

    def __init__(self, img_size: int, channels: int, sigma: float = 0.1, seed: int = 0) -> None:
        super().__init__(img_size, channels, seed)
        require(sigma > 0, "task.sigma", f"must be > 0 (on the [0, 1] pixel scale), got {sigma}")
        self.sigma = sigma

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        return (images + 2 * self.sigma * noise).clamp(-1, 1)  # [-1, 1] spans twice the [0, 1] scale

    def describe(self) -> dict:
        return {**super().describe(), "sigma": self.sigma}


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-d Gaussian of radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


class Deblur(Task):
    """Input: the image blurred by a Gaussian kernel of ``sigma`` px (radius ceil(3 sigma), edges reflected).
    Baseline: the blurred input."""

    name = "deblur"

    def __init__(self, img_size: int, channels: int, sigma: float = 1.0, seed: int = 0) -> None:
        super().__init__(img_size, channels, seed)
        require(sigma > 0, "task.sigma", f"must be > 0 (the blur's standard deviation in pixels), got {sigma}")
        require(math.ceil(3 * sigma) < img_size, "task.sigma",
                f"={sigma} gives a kernel radius of {math.ceil(3 * sigma)} px, not less than data.img_size={img_size}")
        self.sigma = sigma
        self.kernel = gaussian_kernel(sigma)

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        kernel = self.kernel.to(images.device, images.dtype)
        radius = len(kernel) // 2
        channels = images.shape[1]
        # Separable: one pass along rows, one along columns, each channel on its own.
        x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
        x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
        return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)

    def describe(self) -> dict:
        return {**super().describe(), "sigma": self.sigma}


class Inpaint(Task):
    """Input: the image with ``boxes`` random rectangles set to mid-grey (each side uniform in ``min_size`` ..
    ``max_size`` of the image's, anywhere inside it), and the mask (1 = missing) as one more channel. The output
    keeps the known pixels (``finish``). Baseline: each hole filled with the mean of the image's known pixels."""

    name = "inpaint"
    takes_mask = True
    random = True

    def __init__(
        self, img_size: int, channels: int, boxes: int = 1, min_size: float = 0.25, max_size: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__(img_size, channels, seed)
        require(is_int_at_least(boxes, 1), "task.boxes", f"must be an integer >= 1, got {boxes!r}")
        require(0 < min_size <= max_size < 1, "task.min_size and task.max_size",
                f"must satisfy 0 < min_size <= max_size < 1 (shares of the image side), got {min_size}, {max_size}")
        self.boxes = boxes
        self.min_size = min_size
        self.max_size = max_size

    def random_mask(self, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        """``n x 1 x S x S`` bool masks, True inside any of ``boxes`` random boxes."""
        size = self.img_size
        draws = torch.rand(n, self.boxes, 4, generator=generator, device=device)
        sides = (self.min_size + (self.max_size - self.min_size) * draws[..., :2]) * size  # (n, boxes, 2): h, w
        sides = sides.round().clamp(1, size)
        corners = (draws[..., 2:] * (size - sides + 1)).floor()  # top, left: the box stays inside
        coords = torch.arange(size, device=device)
        rows = (coords >= corners[..., :1, None]) & (coords < (corners[..., :1] + sides[..., :1])[..., None])
        cols = (coords >= corners[..., 1:, None]) & (coords < (corners[..., 1:] + sides[..., 1:])[..., None])
        # (n, boxes, S, 1) & (n, boxes, 1, S) -> union over the boxes
        return (rows[..., 0, :, None] & cols[..., 0, None, :]).any(1, keepdim=True)

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return self.model_input(images, self.random_mask(images.shape[0], images.device, generator))

    def model_input(self, images: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            raise ConfigError("task=inpaint needs a mask of the pixels to fill: mask=PATH (white = missing) or a box "
                              "mask=[y0,x0,y1,x1]")
        mask = mask.to(images.device, images.dtype)
        return torch.cat([torch.lerp(images, torch.full_like(images, HOLE_FILL), mask), mask], 1)

    def finish(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        image, mask = inputs[:, : self.channels], inputs[:, self.channels :]
        return torch.lerp(image.to(outputs.dtype), outputs, mask.to(outputs.dtype))

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        image, mask = inputs[:, : self.channels], inputs[:, self.channels :]
        known = 1 - mask
        mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
        return torch.lerp(image, mean.expand_as(image), mask)

    def describe(self) -> dict:
        return {**super().describe(), "boxes": self.boxes, "min_size": self.min_size, "max_size": self.max_size}


class Colorize(Task):
    """Input: the luma of an RGB image (BT.601, as PIL's greyscale conversion). Baseline: that grey in all three
    channels."""

    name = "colorize"

    def __init__(self, img_size: int, channels: int, seed: int = 0) -> None:
        super().__init__(img_size, channels, seed)
        require(channels == 3, "task=colorize", f"needs RGB data (data.channels=3), got data.channels={channels}")

    @property
    def image_channels(self) -> int:
        return 1

    def degrade(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        weights = torch.tensor(LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)

    def baseline(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.expand(-1, 3, -1, -1)


class ImageTranslation(Task):
    """Real pairs (``task=paired``): the data serves each input image with its target stacked as channels
    (``data=paired``), so nothing is made on the device. Baseline: the input itself. CycleGAN's directions are
    this task too: an image of one domain in, one of the other out."""

    name = "paired"

    def check_data(self, datamodule: object) -> None:
        if not (isinstance(datamodule, ServesImagePairs) and datamodule.aligned):
            raise ConfigError("task=paired reads each input beside its target: use data=paired (folders A/ and B/ "
                              "of the same file names, or side-by-side AB images), or choose a task that makes its "
                              "inputs (task=super_resolution, denoise, deblur, inpaint, colorize)")

    def pair(self, images: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        return images[:, : self.channels], images[:, self.channels :]
