"""Per-model cost on the digits: parameter counts and milliseconds per training step (one D update, plus a
G update on every n_critic-th step) of every conf/model/*.yaml, at the model's default config (32 px,
batch 64) and under experiment=quickstart (each model's digits setting: 16 px, widths 32, conf/model_data/).

    python scripts/bench_models.py [--steps 16] [--threads 1] [--models sngan stylegan_lite]

The timed window of 16 steps holds G steps in the n_critic proportion and one lazy R1 step (every 16).
Results are recorded in docs/models.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from step_timing import compose_train, describe_machine, framework_step_time

from parti_exp import CONF_DIR
from parti_exp.builders import build_module
from parti_exp.models.gan.module import AdversarialModule

# The models of the adversarial loop: `_gan` is their shared base, parti needs a trained tokenizer.
ADVERSARIAL_MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if p.stem not in ("_gan", "parti"))
SETTINGS = {"default": ["trainer=cpu"], "quickstart": ["experiment=quickstart"]}
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def parameter_counts(module: AdversarialModule) -> tuple[int, int]:
    return sum(p.numel() for p in module.generator.parameters()), sum(
        p.numel() for p in module.discriminator.parameters()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--models", nargs="*", default=ADVERSARIAL_MODELS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(describe_machine())
    print("| model | setting | G params | D params | n_critic | ms / step |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as workdir:
        for model in args.models:
            for setting, overrides in SETTINGS.items():
                overrides = [f"model={model}", *overrides, *QUIET]
                module = build_module(compose_train(Path(workdir), *overrides, fast=False))
                g_params, d_params = parameter_counts(module)
                seconds = framework_step_time(overrides, args.steps, args.warmup, Path(workdir))
                print(
                    f"| {model} | {setting} | {g_params:,} | {d_params:,} | {module.n_critic} | {1000 * seconds:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
