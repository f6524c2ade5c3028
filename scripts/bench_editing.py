"""Text-guided inpainting on the digits: does the edit show the prompted digit, and does the kept half stay as it was?

    python scripts/bench_editing.py --ckpt <experiment=parti_digits or muse_digits run>/checkpoints/last.ckpt \
        [--n 8] [--candidates 8] [--mask bottom | left | "box=[4,4,12,12]"]

Takes the validation digits of one class (``--source 3``; the split of the checkpoint's data config), masks the
bottom half (``--mask``; a box in pixels, ``box=[y0,x0,y1,x1]``, too) and prompts another digit (``--prompt "a
handwritten eight"``, class ``--target 8``). The outside judges of tests/judges.py, fitted on the *training split* of
``load_digits`` only (the edited images are val digits), read each edit box-filtered back to 8 x 8: an edit counts as
the prompted digit only when both judges read it as that digit with confidence (a blend of a 3 and an 8 is no 8).
Reports, unguided (guidance scale 1) and guided (``--guidance``), without reranking and with it (the best of
``--candidates`` by the rule of ``parti_exp.inference.editing``, with the model's own digit classifier as the scorer;
``both``: scorer and agreement with the kept part, ``scorer``: the classifier alone):

- the rate at which both judges confidently read the prompted digit (and the source digit), and the rate of each
  judge alone for the prompted digit;
- the kept part's PSNR against the input, for the written edit (the reconstruction pasted back there) and for the
  decoded candidate before pasting, against the tokenizer's own reconstruction PSNR on the same half.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from parti_exp.inference.edit_mask import requested_mask
from parti_exp.inference.editing import edit_image, kept_error
from parti_exp.inference.rerank import ClassifierScorer
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.instantiate import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from judges import data_module_train_split, judges, to_digit_grid  # noqa: E402

UNREAD = -1


def reads(fit: tuple[int, ...], images: torch.Tensor) -> dict[str, np.ndarray]:
    """Each judge's confident digit (``UNREAD`` where not confident) for images in [-1, 1], quantised as saved PNGs,
    and ``both``: the digit where both judges agree with confidence."""
    pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
    grid = to_digit_grid(pixels)
    by_judge = {}
    for judge in judges(fit):
        reading = judge.read(grid)
        by_judge[judge.name] = np.where(reading.confident, reading.digits, UNREAD)
    first, second = by_judge.values()
    by_judge["both"] = np.where(first == second, first, UNREAD)
    return by_judge


def psnr_db(mse: torch.Tensor) -> float:
    """Mean per-image PSNR (dB) for images in [-1, 1] (peak-to-peak 2)."""
    return float((10 * torch.log10(4.0 / mse.clamp_min(1e-10))).mean())


def edit_table(
    module, train_cfg, source: int = 3, target: int = 8, prompt: str = "a handwritten eight", mask_spec: str = "bottom",
    n: int = 8, candidates: int = 8, guidance: float = 3.0, seed: int = 0,
    classifier_cache_dir: str = "data/.cache/metrics",
) -> list[str]:
    """The benchmark's lines for one checkpoint and one mask: the judges' accuracies, then one row per guidance scale
    and reranking rule."""
    data = instantiate(train_cfg.data)
    data.setup("fit")
    size = int(train_cfg.data.img_size)
    fit = data_module_train_split(train_cfg.data.split_seed, train_cfg.data.val_fraction)
    val_indices = np.setdiff1d(np.arange(len(load_digits().target)), fit)
    val = data.val_set
    val_images = torch.from_numpy(np.asarray(val.images)).float() / 127.5 - 1
    val_labels = np.asarray(val.labels)
    if not np.array_equal(np.sort(val_labels), np.sort(load_digits().target[val_indices])):
        raise SystemExit("the judges' split is not the data module's: they would have seen the val digits")
    sources = val_images[val_labels == source]
    lines = [f"{type(module).__name__}: {size} px, token grid {tuple(module.token_grid)}"]
    accuracy = np.mean(reads(fit, val_images)["both"] == val_labels)
    lines.append(f"judges fitted on the 8x8 load_digits train split: both confidently right on {accuracy:.3f} of the "
                 f"{size} px val images box-filtered to 8x8")
    recon = module.decode_codes(module.image_codes(val_images))
    lines.append(f"  on the tokenizer's reconstructions: {np.mean(reads(fit, recon)['both'] == val_labels):.3f}")

    mask = requested_mask(mask_spec, size, size)
    recon_mse = kept_error(module.decode_codes(module.image_codes(sources)), sources, mask)
    lines.append(f"{len(sources)} val images of {source}, mask {mask_spec}, prompt {prompt!r}, {n} edits each; "
                 f"tokenizer reconstruction PSNR of the kept part: {psnr_db(recon_mse):.2f} dB")

    scorer = ClassifierScorer(
        load_or_train_classifier(data.train_set, data.val_set, data.num_classes, classifier_cache_dir,
                                 module.device).net,
        data.caption_source().captioner,
    )
    lines.append(f"{'guidance':>8} {'rerank':>20} {'reads ' + str(target):>8} {'svm':>6} {'knn':>6} "
                 f"{'reads ' + str(source):>8} {'kept PSNR':>10} {'decoded kept PSNR':>18} {'- recon':>8}")
    for scale in (1.0, guidance):
        sampling = dataclasses.replace(module.sampling, guidance_scale=scale)
        for count, rule in ((1, "both"), (candidates, "both"), (candidates, "scorer")):
            generator = torch.Generator(module.device).manual_seed(seed)
            edits, decoded_mse, written_mse = [], [], []
            for image in sources:
                result = edit_image(module, image[None], mask, prompt, n, count, scorer, rule, sampling, generator)
                edits.append(result.images)
                decoded_mse.append(result.kept_error)
                written_mse.append(kept_error(result.images, image[None], mask))
            read = reads(fit, torch.cat(edits))
            kept, decoded = psnr_db(torch.cat(written_mse)), psnr_db(torch.cat(decoded_mse))
            rerank = "none" if count == 1 else f"{rule}, best of {count}"
            lines.append(f"{scale:>8.1f} {rerank:>20} {np.mean(read['both'] == target):>8.3f} "
                         f"{np.mean(read['svm'] == target):>6.3f} {np.mean(read['knn'] == target):>6.3f} "
                         f"{np.mean(read['both'] == source):>8.3f} {kept:>10.2f} {decoded:>18.2f} "
                         f"{decoded - psnr_db(recon_mse):>+8.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a model=parti or model=muse checkpoint on the digits")
    parser.add_argument("--source", type=int, default=3)
    parser.add_argument("--target", type=int, default=8)
    parser.add_argument("--prompt", default="a handwritten eight")
    parser.add_argument("--mask", default="bottom",
                        help="what to regenerate: top, bottom, left, right (a half) or box=[y0,x0,y1,x1]")
    parser.add_argument("--n", type=int, default=8, help="edits per validation image")
    parser.add_argument("--candidates", type=int, default=8, help="candidates per edit when reranking")
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier-cache-dir", default="data/.cache/metrics")
    args = parser.parse_args()
    module, train_cfg = module_from_checkpoint(read_checkpoint(args.ckpt))
    print(f"checkpoint {args.ckpt}")
    for line in edit_table(module, train_cfg, args.source, args.target, args.prompt, args.mask, args.n,
                           args.candidates, args.guidance, args.seed, args.classifier_cache_dir):
        print(line, flush=True)


if __name__ == "__main__":
    main()
