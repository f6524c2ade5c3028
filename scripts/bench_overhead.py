"""Step time of the GANModule under Lightning against a hand-written PyTorch loop doing the same work:
same nets (built from the same config), data, optimizers, batch size and update schedule.

    python scripts/bench_overhead.py [--model dcgan] [--steps 20] [--repeats 5] [OVERRIDE ...]

Prints the median and the lower quartile of all timed steps of each, with the ratio framework / hand loop
(goal <= 1.03), and the best run's mean step for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from step_timing import built_for_hand_loop, describe_machine, durations, framework_step_times, interleaved_runs

from parti_exp.data.base import to_signed_unit


def forward_precision(bf16: bool) -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def hand_loop_step_times(
    overrides: list[str], steps: int, warmup: int, workdir: Path, bf16: bool = False
) -> list[float]:
    """Seconds of each step of the same training as GANModule.training_step, written out as a plain loop; ``bf16``:
    forward passes and losses under bf16 autocast, as a hand-written mixed-precision loop does it."""
    module, loader = built_for_hand_loop(overrides, workdir)
    G, D, loss, n_critic = module.generator, module.discriminator, module.loss, module.n_critic
    regularizers = module.regularizers
    opt_g, opt_d = module.configure_optimizers()
    starts = []
    for step in range(warmup + steps):
        if step >= warmup:
            starts.append(time.perf_counter())
        images, labels = next(loader)
        real = to_signed_unit(images)
        g_turn = (step + 1) % n_critic == 0
        with torch.set_grad_enabled(g_turn), forward_precision(bf16):
            fake = G(torch.randn(real.shape[0], G.latent_dim), labels)
        with forward_precision(bf16):
            d_loss = loss.d_loss(D(real, labels), D(fake.detach(), labels))
            for regularizer in regularizers.values():
                d_loss = d_loss + regularizer(lambda x, y=labels: D(x, y), real, fake)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if g_turn:
            for p in D.parameters():
                p.requires_grad_(False)
            with forward_precision(bf16):
                g_loss = loss.g_loss(D(fake, labels))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            for p in D.parameters():
                p.requires_grad_(True)
    return durations(starts, time.perf_counter())


def hand_loop_step_time(overrides: list[str], steps: int, warmup: int, workdir: Path, bf16: bool = False) -> float:
    """Mean seconds per step of ``hand_loop_step_times``."""
    seconds = hand_loop_step_times(overrides, steps, warmup, workdir, bf16)
    return sum(seconds) / len(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--steps", type=int, default=20, help="timed steps; warmup + steps <= 25 (one digits epoch)")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("overrides", nargs="*", help="more config overrides for both, e.g. model.guard=null")
    args = parser.parse_args()
    overrides = [
        f"model={args.model}",
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.enable_checkpointing=false",
        # The hand loop runs on PyTorch's threads; `auto` would pick fewer when other work holds a core.
        f"trainer.cpu_threads={torch.get_num_threads()}",
        *args.overrides,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs = interleaved_runs(
            {
                "hand loop": lambda: hand_loop_step_times(overrides, args.steps, args.warmup, workdir),
                "GANModule": lambda: framework_step_times(overrides, args.steps, args.warmup, workdir),
            },
            args.repeats,
        )
    print(f"machine: {describe_machine()}")
    print(
        f"model={args.model} on digits (data.img_size and batch of the composed config), {args.steps} timed steps "
        f"after {args.warmup}, {args.repeats} interleaved runs"
    )
    # A step that another process interrupted is longer by milliseconds, the framework's own work by a fraction of
    # one: the median and the lower quartile of all steps are the cost of the work itself, a run's mean is not.
    steps = {name: sorted(s for run in values for s in run) for name, values in runs.items()}
    for statistic, q in (("quartile", 0.25), ("median", 0.5)):
        values = {name: seconds[int(q * (len(seconds) - 1))] for name, seconds in steps.items()}
        shown = ", ".join(f"{name} {seconds * 1000:.2f} ms" for name, seconds in values.items())
        print(f"{statistic:>8} step: {shown}; ratio GANModule / hand loop: "
              f"{values['GANModule'] / values['hand loop']:.3f}")
    means = {name: [sum(run) / len(run) for run in values] for name, values in runs.items()}
    best = {name: min(values) for name, values in means.items()}
    hand, framework = best["hand loop"], best["GANModule"]
    print(f"   best run mean: hand loop {hand * 1000:.2f} ms, GANModule {framework * 1000:.2f} ms; "
          f"ratio {framework / hand:.3f}")


if __name__ == "__main__":
    main()
