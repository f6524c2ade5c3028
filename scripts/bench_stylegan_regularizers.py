"""What StyleGAN2's regularisers cost stylegan_lite per training step, against the same model with both off.

    python scripts/bench_stylegan_regularizers.py [--steps 16] [--repeats 3] [--threads 1] [OVERRIDE ...]

At the model's digits setting (``experiment=quickstart model=stylegan_lite``: 16 px, widths 32, batch 64). The timed
window of 16 steps holds 16 G steps, four of them with the lazy path-length penalty (every 4th G step); the
settings are timed interleaved (``repeats`` rounds) and each reported as its median, with its ratio to
``both off``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from step_timing import describe_machine, framework_step_time, interleaved_medians

SETTINGS = {
    "both off": ["model.generator.style_mixing_prob=0", "model.g_regularizers=null"],
    "style mixing (p 0.9)": ["model.g_regularizers=null"],
    "path length (every 4)": ["model.generator.style_mixing_prob=0"],
    "both (the default)": [],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(describe_machine())
    base = ["experiment=quickstart", "model=stylegan_lite", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", *args.overrides]
    with tempfile.TemporaryDirectory() as workdir:
        runners = {
            name: (lambda extra=extra: framework_step_time([*base, *extra], args.steps, args.warmup, Path(workdir)))
            for name, extra in SETTINGS.items()
        }
        medians = interleaved_medians(runners, args.repeats)
    for name, seconds in medians.items():
        print(f"{name:>24}: {1000 * seconds:6.1f} ms / step  ({seconds / medians['both off']:.2f}x)")


if __name__ == "__main__":
    main()
