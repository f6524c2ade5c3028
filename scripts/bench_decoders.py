"""The two stage-2 decoders side by side (model=parti: autoregressive with the KV cache; model=muse: masked tokens in
a few parallel steps) over the same tokenizer, prompts and seeds: sampling throughput, quality, editing.

    python scripts/bench_decoders.py throughput [--parti-scenes CKPT --muse-scenes CKPT] [--batches 1x1,1x16,10x16]
    python scripts/bench_decoders.py quality --parti-digits CKPT --muse-digits CKPT \\
        --parti-scenes CKPT --muse-scenes CKPT --scorer CKPT [--candidates 16]
    python scripts/bench_decoders.py editing --parti-digits CKPT --muse-digits CKPT

throughput: images per second of ``prompts x candidates`` images in one batch (as ``sample`` draws them), the best of
``--repeats`` after a warm-up, for muse at each of ``--steps`` against parti with the KV cache, at the same guidance
scale and top-p. On the digit scenes (8 x 8 tokens) with the two scene checkpoints, whole ``sample_images`` calls
(caption encoding and the tokenizer's decoding included), and on a 16 x 16-token grid (the grid of 64 px captioned
images) with untrained Transformers of the scene presets' widths and a 512-code book, tokens alone (the weights do not
change the work); without the scene checkpoints, the 8 x 8 grid is measured the same way. Each line ends with the
ratio to parti's images per second.

quality: caption accuracy on the digits (50 samples of each of the ten class prompts, guided at each checkpoint's
scale and unguided), read by the training callback's digit reader and by the outside judges of tests/judges.py (the
stricter of the SVM and the kNN judge, fitted on the digits' train split), after a line of negative controls (blends
of two validation digits, noise: what each reader wrongly reads as a digit); then scene accuracy (the prompts of
scripts/bench_scenes.py) with guidance alone and as the best of ``--candidates`` by the contrastive scorer, by the
callback's reader, the pixel judges and the stricter of the two.

editing: scripts/bench_editing.py's table for each digits checkpoint: the validation 3s redrawn for "a handwritten
eight", with the bottom half, the left half and the centre box masked.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from parti_exp.callbacks.caption_accuracy import caption_accuracy
from parti_exp.data.base import to_signed_unit
from parti_exp.inference.rerank import ContrastiveScorer
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.metrics.digit_reader import UNREADABLE, DigitReader
from parti_exp.models.text_to_image.contrastive import load_contrastive
from parti_exp.models.text_to_image.masked_sampling import MaskedSamplingConfig, sample_masked_tokens
from parti_exp.models.text_to_image.sampling import SamplingConfig, sample_image_tokens
from parti_exp.nets.masked_transformer import MaskedImageTransformer
from parti_exp.nets.transformer import TextToImageTransformer
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.instantiate import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_editing import edit_table  # noqa: E402
from bench_scenes import PixelJudges, real_scene_rows, row, scene_readers, scene_results  # noqa: E402
from judges import blends, data_module_train_split, uniform_noise  # noqa: E402

EDIT_MASKS = ("bottom", "left", "box=[4,4,12,12]")  # the last: the centre 2 x 2 of the digits' 4 x 4 token cells


def load(path: Path | None):
    if path is None:
        return None, None
    module, cfg = module_from_checkpoint(read_checkpoint(path))
    return module.eval(), cfg


def best_seconds(draw: Callable[[], torch.Tensor], repeats: int) -> float:
    draw()  # warm-up: allocations and kernel choices outside the timings
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        draw()
        times.append(time.perf_counter() - start)
    return min(times)


def print_throughput(name: str, draw_parti, draw_muse, steps: list[int], batch: int, repeats: int) -> None:
    parti = batch / best_seconds(draw_parti, repeats)
    cells = [f"parti {parti:7.1f}"]
    for count in steps:
        muse = batch / best_seconds(partial(draw_muse, count), repeats)
        cells.append(f"muse {count:>2} steps {muse:7.1f} ({muse / parti:5.2f}x)")
    print(f"{name:>34}  images/s: " + "  ".join(cells), flush=True)


def module_drawers(parti, muse, captions: list[str], guidance: float, seed: int):
    """Whole ``sample_images`` calls of the two checkpoints: (draw with parti, draw with muse in ``steps``)."""
    parti_sampling = dataclasses.replace(parti.sampling, guidance_scale=guidance, top_p=0.9)

    def draw_parti() -> torch.Tensor:
        return parti.sample_images(captions, parti_sampling, torch.Generator().manual_seed(seed))

    def draw_muse(steps: int) -> torch.Tensor:
        sampling = dataclasses.replace(muse.sampling, guidance_scale=guidance, top_p=0.9, steps=steps)
        return muse.sample_images(captions, sampling, torch.Generator().manual_seed(seed))

    return draw_parti, draw_muse


def net_drawers(parti_net, muse_net, ids: torch.Tensor, guidance: float, seed: int):
    """Tokens alone from the two Transformers for the text ``ids``: (draw with parti, draw with muse in ``steps``)."""
    mask = torch.ones_like(ids, dtype=torch.bool)
    null_ids, null_mask = torch.tensor([[2]]), torch.tensor([[True]])

    def draw_parti() -> torch.Tensor:
        config = SamplingConfig(top_p=0.9, guidance_scale=guidance)
        return sample_image_tokens(parti_net, ids, mask, null_ids, null_mask, config,
                                   torch.Generator().manual_seed(seed))

    def draw_muse(steps: int) -> torch.Tensor:
        config = MaskedSamplingConfig(steps=steps, top_p=0.9, guidance_scale=guidance)
        return sample_masked_tokens(muse_net, ids, mask, null_ids, null_mask, config,
                                    torch.Generator().manual_seed(seed))

    return draw_parti, draw_muse


def throughput(args) -> None:
    steps = [int(value) for value in args.steps.split(",")]
    batches = [tuple(int(v) for v in item.split("x")) for item in args.batches.split(",")]
    print(f"{torch.get_num_threads()} threads; guidance {args.guidance:g}, top-p 0.9 for both decoders; best of "
          f"{args.repeats}")
    parti_module, cfg = load(args.parti_scenes)
    muse_module, _ = load(args.muse_scenes)
    checkpoints = parti_module is not None and muse_module is not None
    if checkpoints:
        datamodule = instantiate(cfg.data)
        datamodule.setup()
        texts = [prompt.text for prompt in datamodule.evaluation_prompts(5, 2, args.seed)]
        for prompts, candidates in batches:
            captions = [text for text in texts[:prompts] for _ in range(candidates)]
            draws = module_drawers(parti_module, muse_module, captions, args.guidance, args.seed)
            print_throughput(f"scenes 8x8, {prompts} x {candidates}, images", *draws, steps, len(captions),
                             args.repeats)
    for grid in [16] if checkpoints else [8, 16]:
        codebook = 512 if grid == 16 else 128
        torch.manual_seed(args.seed)
        shape = dict(token_grid=(grid, grid), max_text_len=16, dim=128, encoder_depth=2, heads=4)
        parti_net = TextToImageTransformer(512, codebook, decoder_depth=4, **shape).eval()
        muse_net = MaskedImageTransformer(512, codebook, depth=4, **shape).eval()
        for prompts, candidates in batches:
            ids = torch.randint(3, 512, (prompts, 12)).repeat_interleave(candidates, dim=0)
            draws = net_drawers(parti_net, muse_net, ids, args.guidance, args.seed)
            print_throughput(f"{grid}x{grid} untrained, {prompts} x {candidates}, tokens", *draws, steps, len(ids),
                             args.repeats)


def caption_quality(parti_path: Path, muse_path: Path, args) -> None:
    digits_readers = None
    for name, path in (("parti", parti_path), ("muse", muse_path)):
        module, cfg = load(path)
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        captioner = datamodule.caption_source().captioner
        if digits_readers is None:
            classifier = load_or_train_classifier(datamodule.train_set, datamodule.val_set, datamodule.num_classes,
                                                  str(args.data_dir / ".cache" / "metrics"), module.device,
                                                  datamodule.name).net
            fit = data_module_train_split(cfg.data.split_seed, cfg.data.val_fraction)
            # The outside judges one by one (the stricter's share is the lower of the two) and both together.
            digits_readers = {"callback reader": DigitReader.fitted(classifier, datamodule.train_set),
                              "svm judge": PixelJudges(fit, ("svm",)), "knn judge": PixelJudges(fit, ("knn",)),
                              "both judges": PixelJudges(fit)}
            val = datamodule.val_set
            real = to_signed_unit(torch.from_numpy(np.asarray(val.images)))
            controls = {"real val digits": real, "blends of two": blends(real, np.asarray(val.labels)),
                        "uniform noise": uniform_noise(len(real), real.shape[-1])}
            for kind, reader in digits_readers.items():
                shares = {what: float((reader.read(images) != UNREADABLE).float().mean())
                          for what, images in controls.items()}
                print(f"{kind:>16} reads as a digit: " + ", ".join(f"{k} {v:.3f}" for k, v in shares.items()))
        for scale in (module.sampling.guidance_scale, 1.0):
            sampling = dataclasses.replace(module.sampling, guidance_scale=scale)
            values = {kind: caption_accuracy(module, reader, captioner, args.per_class, sampling, args.seed)
                      for kind, reader in digits_readers.items()}
            stricter = min(values["svm judge"], values["knn judge"])
            print(f"{name:>6} digits, guidance {scale:g}: caption accuracy " + ", ".join(
                f"{kind} {value:.3f}" for kind, value in values.items()) + f", stricter judge {stricter:.3f}",
                flush=True)


def scene_quality(parti_path: Path, muse_path: Path, args) -> None:
    scorer = ContrastiveScorer(load_contrastive(args.scorer)) if args.scorer else None
    readers = None
    for name, path in (("parti", parti_path), ("muse", muse_path)):
        module, cfg = load(path)
        if readers is None:
            datamodule = instantiate(cfg.data)
            datamodule.setup()
            readers = scene_readers(datamodule, args.data_dir, module.device)
            prompts = datamodule.evaluation_prompts(5, 2, args.seed)
            print(f"{len(prompts)} scene prompts x {args.per_prompt} samples")
            for line in real_scene_rows(datamodule, readers):
                print(line)
        for candidates in (1, args.candidates):
            if candidates > 1 and scorer is None:
                continue
            results, seconds = scene_results(module, readers, prompts, module.sampling, candidates, scorer,
                                             args.per_prompt, args.seed)
            label = f"{name}, guidance {module.sampling.guidance_scale:g}, best of {candidates}"
            for kind, result in results.items():
                print(row(f"{label}, {kind}", result) + (f"  [{seconds:.0f} s]" if kind == "stricter" else ""),
                      flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=("throughput", "quality", "editing"))
    for name in ("parti-digits", "muse-digits", "parti-scenes", "muse-scenes", "scorer"):
        parser.add_argument(f"--{name}", type=Path)
    parser.add_argument("--steps", default="4,8,12", help="muse's step counts (throughput)")
    parser.add_argument("--batches", default="1x1,1x16,10x16", help="prompts x candidates per batch (throughput)")
    parser.add_argument("--guidance", type=float, default=2.0, help="guidance scale of both (throughput)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=50, help="samples per digit prompt (quality)")
    parser.add_argument("--per-prompt", type=int, default=10, help="samples per scene prompt (quality)")
    parser.add_argument("--candidates", type=int, default=16, help="best of, by the scorer (quality)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where the readers' caches live")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.section == "throughput":
        throughput(args)
    elif args.section == "quality":
        if args.parti_digits and args.muse_digits:
            caption_quality(args.parti_digits, args.muse_digits, args)
        if args.parti_scenes and args.muse_scenes:
            scene_quality(args.parti_scenes, args.muse_scenes, args)
    else:
        for name, path in (("parti", args.parti_digits), ("muse", args.muse_digits)):
            module, cfg = load(path)
            for mask in EDIT_MASKS:
                print(f"== {name}: {path}, mask {mask}")
                for line in edit_table(module, cfg, mask_spec=mask, guidance=module.sampling.guidance_scale,
                                       seed=args.seed, classifier_cache_dir=str(args.data_dir / ".cache" / "metrics")):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
