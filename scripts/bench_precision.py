"""Step time of DCGAN under the GANModule at precision 32-true vs bf16-mixed, and with compile=true, in one run.

    python scripts/bench_precision.py [--model dcgan] [--width 64] [--img-size 32] [--steps 20] [--repeats 3]
                                      [--no-compile] [--hand-loop]

Prints ms per training step for each setting and its speed-up over 32-bit. compile=true pays its
compilation time (reported separately, from the first steps) once per run. ``--hand-loop`` adds the plain PyTorch
loop of bench_overhead.py in fp32 and with bf16 autocast, the speed-up a hand-written loop gets on this machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench_overhead import hand_loop_step_time
from step_timing import describe_machine, framework_step_time, interleaved_medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--width", type=int, default=64, help="model.generator/discriminator.width")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=32, help="data.img_size of the digits")
    parser.add_argument("--no-compile", action="store_true", help="leave out the compile=true settings")
    parser.add_argument(
        "--hand-loop",
        action="store_true",
        help="also time the plain PyTorch loop of bench_overhead.py in fp32 and under bf16 autocast",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps; warmup + steps <= one digits epoch")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = [
        f"model={args.model}",
        "trainer=cpu",
        f"data.batch_size={args.batch_size}",
        f"data.img_size={args.img_size}",
        f"model.generator.width={args.width}",
        f"model.discriminator.width={args.width}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.enable_checkpointing=false",
        # The hand loop runs on PyTorch's threads; `auto` would pick fewer when other work holds a core.
        f"trainer.cpu_threads={torch.get_num_threads()}",
    ]
    settings = {
        "32-true": [*base, "precision=32-true"],
        "bf16-mixed": [*base, "precision=bf16-mixed"],
        "32-true + compile": [*base, "precision=32-true", "compile=true"],
        "bf16-mixed + compile": [*base, "precision=bf16-mixed", "compile=true"],
    }
    if args.no_compile:
        settings = {name: overrides for name, overrides in settings.items() if "compile" not in name}
    # Called inside the temporary folder below, where `workdir` exists.
    runners = {
        name: (lambda o=o: framework_step_time(o, args.steps, args.warmup, workdir)) for name, o in settings.items()
    }
    if args.hand_loop:
        for name, bf16 in (("hand loop 32-true", False), ("hand loop bf16 autocast", True)):
            runners[name] = lambda bf16=bf16: hand_loop_step_time(base, args.steps, args.warmup, workdir, bf16=bf16)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # The first compiled run of each setting pays for compilation: time it apart, as a user would see it.
        compile_seconds = {}
        for name, overrides in settings.items():
            if "compile" in name:
                start = time.perf_counter()
                framework_step_time(overrides, steps=1, warmup=1, workdir=workdir)
                compile_seconds[name] = time.perf_counter() - start
        results = interleaved_medians(runners, args.repeats)
    print(f"machine: {describe_machine()}")
    print(
        f"model={args.model} width={args.width} on digits {args.img_size} px, batch {args.batch_size}, "
        f"{args.steps} timed steps after {args.warmup}, median of {args.repeats} interleaved runs"
    )
    for name, seconds in results.items():
        extra = f"   (first run incl. compilation: {compile_seconds[name]:.1f} s)" if name in compile_seconds else ""
        baseline = results["hand loop 32-true" if name.startswith("hand loop") else "32-true"]
        speedup = baseline / seconds
        print(f"{name:>22}: {seconds * 1000:8.1f} ms/step   speed-up vs 32-true: {speedup:5.2f}x{extra}")


if __name__ == "__main__":
    main()
