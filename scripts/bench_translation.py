"""The image-to-image presets, trained cold and measured on the held-out digits; and pix2pix's step time against a
hand-written pix2pix loop with the same nets.

    python scripts/bench_translation.py [--presets sr_digits,denoise_digits,cyclegan_digits] [--seeds 42,7]
        [--train-args "trainer.cpu_threads=1 ..."]
    python scripts/bench_translation.py --overhead [--steps 20 --warmup 4 --repeats 5]

Presets: each `python -m parti_exp.train experiment=<preset> seed=<s>` runs as a subprocess from an empty data folder
(the metrics' digit classifier and real statistics are made again) and is timed end to end; its last checkpoint is
then measured on the digits' validation split (tests/translation_judging.py): PSNR and SSIM against the truth and
how often the stricter of the outside digit readers (tests/judges.py) reads the right digit, for the model and for
the floor (super-resolution: bicubic upsampling; denoising: the noisy input and the Gaussian filter of the width
that denoises the train split best; CycleGAN: a itself against dilate(a), and how often the readers read a and its
translation as the same digit). The run's own last val/psnr, val/fid_clf, val/precision_clf and val/coverage_clf
(the outputs of held-out inputs against the training images, in the framework's digit classifier's space) are
printed beside them.

Overhead: the median and lower quartile of all timed steps of Pix2PixModule under Lightning and of the same work as
a plain loop (the same nets and optimizers built from the same config, the same data, the task's inputs made from
each batch, D's update on the input beside target and output, G's adversarial + lambda L1 update), interleaved runs;
the ratio framework / hand loop (goal <= 1.05).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_default_run import last_metrics
from step_timing import built_for_hand_loop, describe_machine, durations, framework_step_times, interleaved_runs
from translation_judging import denoising, digit_styles, super_resolution

from parti_exp.data.base import to_signed_unit
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.runtime.torch_utils import frozen

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("sr_digits", "denoise_digits", "cyclegan_digits")


def train_cold(preset: str, seed: int, workdir: Path, extra: list[str]) -> tuple[float, Path]:
    """Seconds of the training command (plus the overrides ``extra``) from an empty data folder, and its run
    directory."""
    run_dir = workdir / f"{preset}_{seed}"
    command = [sys.executable, "-m", "parti_exp.train", f"experiment={preset}", f"seed={seed}",
               f"hydra.run.dir={run_dir}", f"paths.data_dir={workdir / f'data_{preset}_{seed}'}",
               "trainer.enable_progress_bar=false", *extra]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return time.perf_counter() - start, run_dir


def measure_preset(preset: str, seed: int, workdir: Path, extra: list[str]) -> None:
    seconds, run_dir = train_cold(preset, seed, workdir, extra)
    module, _ = module_from_checkpoint(read_checkpoint(run_dir / "checkpoints" / "last.ckpt"))
    own = last_metrics(run_dir)
    typed = f", {' '.join(extra)}" if extra else ""
    print(f"\n{preset} seed={seed}: trained in {seconds:.0f} s (cold{typed}; {describe_machine()})")
    keys = ("psnr", "psnr_baseline", "fid_clf", "precision_clf", "coverage_clf")
    shown = {key: own.get(f"val/{key}", float("nan")) for key in keys}
    print("  run's own: " + ", ".join(f"val/{key} {value:.2f}" for key, value in shown.items()))
    if preset == "cyclegan_digits":
        print(f"  held-out digits: {digit_styles(module)}")
        return
    scores = super_resolution(module) if preset == "sr_digits" else denoising(module)
    for name, value in scores.items():
        print(f"  {name:>8}: {value}")
    floor = scores["bicubic"] if preset == "sr_digits" else scores["filter"]
    print(f"  model - {'bicubic' if preset == 'sr_digits' else 'filter'}: {scores['model'].psnr - floor.psnr:+.2f} dB, "
          f"read right {100 * (scores['model'].read_right - floor.read_right):+.1f} points")


def hand_loop_step_times(overrides: list[str], steps: int, warmup: int, workdir: Path) -> list[float]:
    """Seconds of each step of the same training as Pix2PixModule.training_step, written out as a plain loop."""
    module, loader = built_for_hand_loop(overrides, workdir)
    G, D, loss, task, l1_weight = module.generator, module.discriminator, module.loss, module.task, module.l1_weight
    opt_g, opt_d = module.configure_optimizers()
    starts = []
    for step in range(warmup + steps):
        if step >= warmup:
            starts.append(time.perf_counter())
        images, _ = next(loader)
        inputs, targets = task.pair(to_signed_unit(images), None)  # a random task draws from the global stream
        fake = task.finish(G(inputs), inputs)
        d_loss = loss.d_loss(D(targets, inputs), D(fake.detach(), inputs))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with frozen(D):
            g_loss = loss.g_loss(D(fake, inputs)) + l1_weight * F.l1_loss(fake, targets)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
    return durations(starts, time.perf_counter())


def measure_overhead(preset: str, steps: int, warmup: int, repeats: int) -> None:
    overrides = [
        f"experiment={preset}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.enable_checkpointing=false",
        f"trainer.cpu_threads={torch.get_num_threads()}",  # the hand loop runs on PyTorch's threads
    ]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs = interleaved_runs(
            {
                "hand loop": lambda: hand_loop_step_times(overrides, steps, warmup, workdir),
                "Pix2PixModule": lambda: framework_step_times(overrides, steps, warmup, workdir),
            },
            repeats,
        )
    print(f"\nexperiment={preset}: {steps} timed steps after {warmup}, {repeats} interleaved runs "
          f"({describe_machine()})")
    all_steps = {name: sorted(s for run in values for s in run) for name, values in runs.items()}
    for statistic, q in (("quartile", 0.25), ("median", 0.5)):
        values = {name: seconds[int(q * (len(seconds) - 1))] for name, seconds in all_steps.items()}
        shown = ", ".join(f"{name} {seconds * 1000:.2f} ms" for name, seconds in values.items())
        print(f"{statistic:>8} step: {shown}; ratio Pix2PixModule / hand loop: "
              f"{values['Pix2PixModule'] / values['hand loop']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--train-args", default="", help="overrides added to each preset's training command")
    parser.add_argument("--workdir", default=None, help="keep the runs (checkpoints, grids) here instead of a temp dir")
    parser.add_argument("--overhead", action="store_true", help="time pix2pix against a hand loop instead")
    parser.add_argument("--steps", type=int, default=20, help="timed steps; warmup + steps <= 25 (one digits epoch)")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    presets = [p for p in args.presets.split(",") if p]
    if args.overhead:
        for preset in presets:
            if preset != "cyclegan_digits":
                measure_overhead(preset, args.steps, args.warmup, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        for preset in presets:
            for seed in (int(s) for s in args.seeds.split(",")):
                measure_preset(preset, seed, workdir, args.train_args.split())


if __name__ == "__main__":
    main()
