"""Share of a text-to-image training step spent on its text: drawing one caption per image and encoding the batch
with the BPE tokenizer, against the whole step (the same, plus the frozen image tokenizer's encode, the
Transformer's forward and backward, and the optimizer step), measured in one run.

    python scripts/bench_text_encoding.py [--steps 30] [--tokenizer-ckpt PATH]

Uses `experiment=parti_digits` (16 px digits, batch 64, the preset's Transformer) over an image tokenizer checkpoint
(default: the tiny one in tests/fixtures, whose encode is cheaper than a real tokenizer's, so the share printed is an
upper bound).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hydra_compose import compose_train  # noqa: E402

from parti_exp.builders import build_datamodule, build_module  # noqa: E402
from parti_exp.data.base import to_signed_unit  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "checkpoints" / "vqgan_tokenizer_8d791b7.ckpt"


def seconds_per_call(call, steps: int) -> float:
    call()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        call()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--tokenizer-ckpt", default=str(FIXTURE))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        cfg = compose_train(Path(workdir), "experiment=parti_digits", f"model.tokenizer_ckpt={args.tokenizer_ckpt}",
                            fast=False)
        datamodule, module = build_datamodule(cfg), build_module(cfg)
        module.use_captions(datamodule.caption_source())
        images, labels = next(iter(datamodule.train_dataloader()))
        images = to_signed_unit(images)
        optimizer = module.configure_optimizers()

        def text() -> None:
            module.encode_captions(module.captions.draw(labels))

        def step() -> None:
            loss = module._batch_loss((images, labels), drop_conditions=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        text_seconds = seconds_per_call(text, args.steps)
        step_seconds = seconds_per_call(step, args.steps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {len(labels)}")
    print(f"captions drawn and encoded: {1000 * text_seconds:.2f} ms per batch")
    print(f"whole training step:        {1000 * step_seconds:.2f} ms")
    print(f"share of the step: {text_seconds / step_seconds:.3f}")


if __name__ == "__main__":
    main()
