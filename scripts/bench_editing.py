"""Text-guided inpainting on the digits: does the edit show the prompted digit, and does the kept half stay as it was?

    python scripts/bench_editing.py --ckpt <experiment=parti_digits run>/checkpoints/last.ckpt [--n 8] [--candidates 8]

Takes the validation digits of one class (``--source 3``; the split of the checkpoint's data config), masks the
bottom half (``--mask``) and prompts another digit (``--prompt "a handwritten eight"``, class ``--target 8``). A
held-out classifier that the model never saw reads each edit: an RBF SVM trained by scikit-learn on the *training
split* of ``load_digits`` at its native 8 x 8, reading the 16 px edit box-filtered back to 8 x 8. Reports, unguided
(guidance scale 1) and guided (``--guidance``), without reranking and with it (the best of ``--candidates`` by the
rule of ``parti_exp.inference.editing``, with the model's own digit classifier as the scorer; ``both``: scorer and
agreement with the kept half, ``scorer``: the classifier alone):

- the rate at which the SVM reads the prompted digit (and the source digit);
- the kept half's PSNR against the input, for the written edit (the reconstruction pasted back there) and for the
  decoded candidate before pasting, against the tokenizer's own reconstruction PSNR on the same half.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.svm import SVC

from parti_exp.inference.edit_mask import requested_mask
from parti_exp.inference.editing import edit_image, kept_error
from parti_exp.inference.rerank import ClassifierScorer
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.models.text_to_image.sampling import SamplingConfig
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.instantiate import instantiate


def held_out_classifier(split_seed: int, val_fraction: float) -> tuple[SVC, np.ndarray]:
    """An SVM on the 8 x 8 training split of load_digits (the split DigitsDataModule draws), and the val indices."""
    digits = load_digits()
    order = np.random.default_rng(split_seed).permutation(len(digits.images))
    n_val = max(1, round(val_fraction * len(digits.images)))
    val, train = order[:n_val], order[n_val:]
    svm = SVC(gamma=0.001, C=10.0).fit(digits.data[train], digits.target[train])
    return svm, val


def svm_reads(svm: SVC, images: torch.Tensor) -> np.ndarray:
    """The SVM's class for images in [-1, 1] (``N x 1 x 16 x 16``), box-filtered to 8 x 8 and scaled to 0..16."""
    levels = ((images.float().clamp(-1, 1) + 1) * 127.5).round() / 255 * 16  # as saved PNGs, then load_digits' scale
    return svm.predict(F.avg_pool2d(levels, 2).flatten(1).cpu().numpy())


def psnr_db(mse: torch.Tensor) -> float:
    """Mean per-image PSNR (dB) for images in [-1, 1] (peak-to-peak 2)."""
    return float((10 * torch.log10(4.0 / mse.clamp_min(1e-10))).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--source", type=int, default=3)
    parser.add_argument("--target", type=int, default=8)
    parser.add_argument("--prompt", default="a handwritten eight")
    parser.add_argument("--mask", default="bottom", help="the half to regenerate: top, bottom, left or right")
    parser.add_argument("--n", type=int, default=8, help="edits per validation image")
    parser.add_argument("--candidates", type=int, default=8, help="candidates per edit when reranking")
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier-cache-dir", default="data/.cache/metrics")
    args = parser.parse_args()

    module, train_cfg = module_from_checkpoint(read_checkpoint(args.ckpt))
    data = instantiate(train_cfg.data)
    data.setup("fit")
    size = int(train_cfg.data.img_size)
    svm, val_indices = held_out_classifier(train_cfg.data.split_seed, train_cfg.data.val_fraction)
    val = data.val_set
    val_images = torch.from_numpy(np.asarray(val.images)).float() / 127.5 - 1
    val_labels = np.asarray(val.labels)
    if not np.array_equal(val_labels, load_digits().target[val_indices]):
        raise SystemExit("the SVM's split is not the data module's: the held-out classifier would have seen val")
    sources = val_images[val_labels == args.source]
    print(f"checkpoint {args.ckpt}: {size} px, token grid {tuple(module.image_tokenizer.token_grid)}")
    accuracy = np.mean(svm_reads(svm, val_images) == val_labels)
    print(f"held-out SVM (8x8 load_digits train split): val accuracy {accuracy:.3f} on the {size} px val images "
          "box-filtered to 8x8")
    recon = module.decode_codes(module.image_codes(val_images))
    print(f"  on the tokenizer's reconstructions: {np.mean(svm_reads(svm, recon) == val_labels):.3f}")

    mask = requested_mask(args.mask, size, size)
    recon_mse = kept_error(module.decode_codes(module.image_codes(sources)), sources, mask)
    print(f"{len(sources)} val images of {args.source}, {args.mask} half masked, prompt {args.prompt!r}, {args.n} "
          f"edits each; tokenizer reconstruction PSNR of the kept half: {psnr_db(recon_mse):.2f} dB")

    scorer = ClassifierScorer(
        load_or_train_classifier(data.train_set, data.val_set, data.num_classes, args.classifier_cache_dir,
                                 module.device).net,
        data.caption_source().captioner,
    )
    print(f"{'guidance':>8} {'rerank':>20} {'reads ' + str(args.target):>8} {'reads ' + str(args.source):>8} "
          f"{'kept PSNR':>10} {'decoded kept PSNR':>18} {'- recon':>8}")
    for guidance in (1.0, args.guidance):
        sampling = SamplingConfig(**{**vars(module.sampling), "guidance_scale": guidance})
        for candidates, rule in ((1, "both"), (args.candidates, "both"), (args.candidates, "scorer")):
            generator = torch.Generator(module.device).manual_seed(args.seed)
            edits, decoded_mse, written_mse = [], [], []
            for image in sources:
                result = edit_image(module, image[None], mask, args.prompt, args.n, candidates, scorer, rule,
                                    sampling, generator)
                edits.append(result.images)
                decoded_mse.append(result.kept_error)
                written_mse.append(kept_error(result.images, image[None], mask))
            reads = svm_reads(svm, torch.cat(edits))
            kept, decoded = psnr_db(torch.cat(written_mse)), psnr_db(torch.cat(decoded_mse))
            rerank = "none" if candidates == 1 else f"{rule}, best of {candidates}"
            print(f"{guidance:>8.1f} {rerank:>20} {np.mean(reads == args.target):>8.3f} "
                  f"{np.mean(reads == args.source):>8.3f} {kept:>10.2f} {decoded:>18.2f} "
                  f"{decoded - psnr_db(recon_mse):>+8.2f}")


if __name__ == "__main__":
    main()
