"""Scene accuracy of a digit-scenes text-to-image checkpoint (experiment=parti_scenes), per category, for seen and
held-out content, at several guidance scales and numbers of candidates reranked by a contrastive scorer
(experiment=contrastive_scenes), as Parti samples: guidance, then the best of k by the scorer.

    python scripts/bench_scenes.py CKPT [--scorer SCORER_CKPT] [--guidance 1,2,3] [--candidates 1,4,8]

The prompts and the reader are those of the training callback (callbacks.scene_accuracy: 5 seen contents per
category and every held-out one, 2 phrasings each, ``--per-prompt`` samples each). The baseline of each line is the
reader on real validation scenes (printed first), the ceiling any model can reach.

Every line is read twice, by readers of two kinds: the training callback's reader (a CNN's confident read near real
digits' features) and the outside pixel judges of tests/judges.py (an SVM and a nearest-neighbour reader on each cell
box-filtered to 8 x 8, fitted on the digits' train split; a cell counts as a digit only when both read it
confidently as the same one). Empty cells are found by ink alike. The ``stricter`` line is the lower of the two
accuracies for each group.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from parti_exp.callbacks.scene_accuracy import score_scenes
from parti_exp.data.base import to_signed_unit
from parti_exp.data.captions.scene_spec import CATEGORIES, ScenePrompt
from parti_exp.inference.rerank import ContrastiveScorer, sample_reranked
from parti_exp.metrics.digit_reader import UNREADABLE
from parti_exp.metrics.scene_reader import SceneReader, load_scene_reader
from parti_exp.models.text_to_image.contrastive import load_contrastive
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.instantiate import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from judges import data_module_train_split, judges, to_digit_grid  # noqa: E402


class PixelJudges:
    """Reads a cell as a digit when both outside judges read it confidently as the same one (``read`` of a
    ``DigitReader``'s shape, so ``SceneReader`` can use it for the cells)."""

    def __init__(self, fit: tuple[int, ...], names: tuple[str, ...] = ("svm", "knn")) -> None:
        """Fitted on ``load_digits()`` indices ``fit``; ``names``: the judges that must agree (one alone reads as that
        judge does)."""
        self.judges = [judge for judge in judges(fit) if judge.name in names]

    def read(self, images: torch.Tensor) -> torch.Tensor:
        grid = to_digit_grid(images.cpu())
        first, *others = (judge.read(grid) for judge in self.judges)
        clear = first.confident.copy()
        for reading in others:
            clear &= reading.confident & (reading.digits == first.digits)
        return torch.from_numpy(np.where(clear, first.digits, UNREADABLE)).long()


def stricter(*results: dict[str, float]) -> dict[str, float]:
    return {key: min(result[key] for result in results) for key in results[0]}


def row(name: str, results: dict[str, float]) -> str:
    seen = " ".join(f"{results.get(f'scene_accuracy_{c}', float('nan')):5.2f}" for c in CATEGORIES)
    held = " ".join(f"{results.get(f'scene_accuracy_heldout_{c}', float('nan')):5.2f}" for c in CATEGORIES[1:])
    return (f"{name:>24}  seen {results['scene_accuracy']:5.3f} ({seen})  "
            f"held out {results.get('scene_accuracy_heldout', float('nan')):5.3f} ({held})")


def scene_readers(datamodule, data_dir: Path, device: torch.device) -> dict[str, SceneReader]:
    """The training callback's reader and the outside pixel judges, by name."""
    reader = load_scene_reader(datamodule.digits, data_dir / ".cache" / "metrics", device)
    digits = datamodule.digits
    outside = SceneReader(PixelJudges(data_module_train_split(digits.split_seed, digits.val_fraction)))
    return {"callback reader": reader, "pixel judges": outside}


def real_scene_rows(datamodule, readers: dict[str, SceneReader]) -> list[str]:
    """The ceiling: each reader on the real validation scenes, as if they were samples of their own content."""
    scenes = datamodule.scenes["val"]
    real = to_signed_unit(torch.from_numpy(np.asarray(datamodule.load_split("val").images)))
    truth = [ScenePrompt("", spec, bool(held)) for spec, held in zip(scenes.specs, scenes.held_out)]
    return [row(f"real scenes, {kind}", score_scenes(truth, each.read(real))) for kind, each in readers.items()]


def scene_results(
    module, readers: dict[str, SceneReader], prompts: list[ScenePrompt], sampling, candidates: int, scorer,
    per_prompt: int, seed: int,
) -> tuple[dict[str, dict[str, float]], float]:
    """Each reader's scene accuracies (and the stricter of them) of ``per_prompt`` samples per prompt, each the best
    of ``candidates`` by ``scorer``; and the seconds it took."""
    generator = torch.Generator(module.device).manual_seed(seed)
    start = time.perf_counter()
    read, repeated = {kind: [] for kind in readers}, []
    for prompt in prompts:
        images, _ = sample_reranked(module, prompt.text, per_prompt, candidates, scorer, sampling, generator)
        for kind, each in readers.items():
            read[kind].append(each.read(images))
        repeated += [prompt] * per_prompt
    seconds = time.perf_counter() - start
    results = {kind: score_scenes(repeated, torch.cat(cells)) for kind, cells in read.items()}
    results["stricter"] = stricter(*results.values())
    return results, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", type=Path)
    parser.add_argument("--scorer", type=Path, help="a model=contrastive checkpoint on the same scenes")
    parser.add_argument("--guidance", default="1,2,3", help="comma-separated guidance scales")
    parser.add_argument("--candidates", default="1,8", help="comma-separated candidate counts (needs --scorer > 1)")
    parser.add_argument("--per-prompt", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where the reader's cache lives")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    module, cfg = module_from_checkpoint(read_checkpoint(args.ckpt))
    module.eval()
    scorer = ContrastiveScorer(load_contrastive(args.scorer)) if args.scorer else None
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    readers = scene_readers(datamodule, args.data_dir, module.device)
    prompts = datamodule.evaluation_prompts(5, 2, args.seed)

    print(f"{len(prompts)} prompts x {args.per_prompt} samples; categories: {', '.join(CATEGORIES)} "
          f"(held out: {', '.join(CATEGORIES[1:])})")
    for line in real_scene_rows(datamodule, readers):
        print(line)
    for guidance in (float(value) for value in args.guidance.split(",")):
        sampling = dataclasses.replace(module.sampling, guidance_scale=guidance)
        for candidates in (int(value) for value in args.candidates.split(",")):
            if candidates > 1 and scorer is None:
                continue
            results, seconds = scene_results(module, readers, prompts, sampling, candidates, scorer, args.per_prompt,
                                             args.seed)
            name = f"guidance {guidance:g}, best of {candidates}"
            for kind, result in results.items():
                print(row(f"{name}, {kind}", result) + (f"  [{seconds:.0f} s]" if kind == "stricter" else ""),
                      flush=True)


if __name__ == "__main__":
    main()
