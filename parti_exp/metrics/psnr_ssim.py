"""PSNR and SSIM of images against their targets (torchmetrics), per image: the image-to-image models' validation
metrics (``val/psnr``, ``val/ssim``), the image tokenizer's reconstruction PSNR, and ``python -m parti_exp.evaluate
outputs_dir=… targets_dir=…`` over two folders of files with the same names.

A dataset's value is the mean of its images' values, as super-resolution papers report it. PSNR is capped at
``MAX_PSNR`` dB, so that an image equal to its target (MSE 0, PSNR infinite) leaves a mean that can be printed and
compared. SSIM uses the standard window (Gaussian, σ = 1.5 px, 11 x 11; Wang et al. 2004); on images smaller
than that window needs (under 6 px a side) the window shrinks to fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from parti_exp.data.decode import open_image
from parti_exp.errors import BadDataError, MissingInputError
from parti_exp.metrics.folder_images import image_files

MAX_PSNR = 100.0
SSIM_SIGMA = 1.5
# Images in [-1, 1], as the models make them: the peak-to-peak range is 2.
SIGNED_UNIT_RANGE = 2.0


def psnr(images: torch.Tensor, targets: torch.Tensor, data_range: float = SIGNED_UNIT_RANGE) -> torch.Tensor:
    """Per-image PSNR in dB (``N``) of ``N x C x H x W`` images against their targets, in float32."""
    values = peak_signal_noise_ratio(
        images.float(), targets.float(), data_range=data_range, reduction="none", dim=(1, 2, 3)
    )
    return values.clamp(max=MAX_PSNR)


def ssim_sigma(side: int) -> float:
    """The standard σ, or one whose window (torchmetrics' radius ``int(3.5 σ + 0.5)``, reflect-padded) fits an
    image of ``side`` px."""
    fits = int(3.5 * SSIM_SIGMA + 0.5) < side
    return SSIM_SIGMA if fits else (side - 1) / 3.5


def ssim(images: torch.Tensor, targets: torch.Tensor, data_range: float = SIGNED_UNIT_RANGE) -> torch.Tensor:
    """Per-image SSIM (``N``) of ``N x C x H x W`` images against their targets, the mean over channels."""
    sigma = ssim_sigma(min(images.shape[-2:]))
    return structural_similarity_index_measure(
        images.float(), targets.float(), data_range=data_range, sigma=sigma, reduction="none"
    )


def _by_stem(folder: str | Path, key: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in image_files(folder, key):
        if path.stem in files:
            raise BadDataError(f"{key}={folder} holds {files[path.stem].name} and {path.name}: outputs and targets "
                               "are matched by file name without extension, so each name may appear once")
        files[path.stem] = path
    return files


def _read(path: Path) -> torch.Tensor:
    # RGB for both sides: a greyscale file repeated over three channels has the same PSNR and SSIM.
    array = torch.from_numpy(np.asarray(open_image(path, "RGB")).copy())
    return array.permute(2, 0, 1).float() / 255


def folder_psnr_ssim(outputs_dir: str | Path, targets_dir: str | Path) -> dict:
    """Mean PSNR and SSIM of each image of ``outputs_dir`` against the file of the same name (any image extension)
    in ``targets_dir``. Every target needs an output; outputs without a target (a contact sheet) are counted and
    left out."""
    outputs, targets = _by_stem(outputs_dir, "outputs_dir"), _by_stem(targets_dir, "targets_dir")
    missing = sorted(set(targets) - set(outputs))
    if missing:
        shown = ", ".join(targets[stem].name for stem in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise MissingInputError(f"outputs_dir={outputs_dir} has no output for {len(missing)} of the "
                                f"{len(targets)} targets in targets_dir={targets_dir} ({shown}): outputs are matched "
                                "to targets by file name")
    psnrs, ssims = [], []
    for stem, target_path in sorted(targets.items()):
        output, target = _read(outputs[stem]), _read(target_path)
        if output.shape != target.shape:
            raise BadDataError(f"{outputs[stem]} is {output.shape[2]} x {output.shape[1]} px, its target "
                               f"{target_path} {target.shape[2]} x {target.shape[1]}: an output is compared with a "
                               "target of its own size")
        psnrs.append(psnr(output[None], target[None], data_range=1.0))
        ssims.append(ssim(output[None], target[None], data_range=1.0))
    return {
        "psnr": float(torch.cat(psnrs).mean()),
        "ssim": float(torch.cat(ssims).mean()),
        "num_pairs": len(targets),
        "unmatched_outputs": len(outputs) - len(targets),
        "outputs": str(outputs_dir),
        "targets": str(targets_dir),
    }
