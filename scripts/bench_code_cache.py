"""Stage-2 training step time with the tokenizer's codes cached (``model.code_cache=true``) against encoding every
batch with the frozen tokenizer (the default), same config, same machine, interleaved runs.

    python scripts/bench_code_cache.py [--steps 30] [--warmup 5] [--repeats 3] [--sizes 32 64]

For each image size: a stage-1 tokenizer of ``experiment=tokenizer_scenes`` trained for two steps (its weights do
not change the cost of a step, its architecture does), then ``experiment=parti_scenes`` over it at that size. The
one-time encoding of the training split into the cache is reported apart (it happens before the timed steps).

Each step is timed twice: wall time, and the CPU time of this process (one torch thread, no loader workers), which
other jobs on the machine do not inflate; the ratio is taken from the CPU time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

from lightning.pytorch import Callback
from step_timing import compose_train, describe_machine, interleaved_runs

from parti_exp.train import train


def tokenizer(workdir: Path, size: int) -> Path:
    train(compose_train(workdir, "experiment=tokenizer_scenes", f"data.img_size={size}", "data.num_train=2000",
                        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "~logger",
                        "trainer.max_epochs=1", fast=False))
    return workdir / "run" / "checkpoints" / "last.ckpt"


class CPUStepTimer(Callback):
    """Wall and process CPU seconds of each training step after the warm-up."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.started = (time.perf_counter(), time.process_time())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= self.warmup:
            self.wall.append(time.perf_counter() - self.started[0])
            self.cpu.append(time.process_time() - self.started[1])


def step_times(overrides: list[str], steps: int, warmup: int, workdir: Path) -> tuple[float, float]:
    """Median (wall, CPU) seconds of a training step of the composed config, without loggers and callbacks."""
    timer = CPUStepTimer(warmup)
    train(compose_train(workdir, *overrides, f"trainer.limit_train_batches={warmup + steps}",
                        "trainer.limit_val_batches=0", "trainer.max_epochs=1", "~logger", "~callbacks",
                        "metrics=none", fast=False), [timer])
    return median(timer.wall), median(timer.cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--num-train", type=int, default=2000, help="training scenes (the cache encodes them all)")
    args = parser.parse_args()
    print(describe_machine())
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            ckpt = tokenizer(work / "tokenizer", size)
            common = ["experiment=parti_scenes", f"model.tokenizer_ckpt={ckpt}", f"data.img_size={size}",
                      f"data.num_train={args.num_train}", "trainer.cpu_threads=1"]
            cache = work / "codes"
            started = time.perf_counter()
            step_times(cached_run := [*common, "model.code_cache=true", f"model.code_cache_dir={cache}"], 1, 0,
                       work / "fill")
            fill = time.perf_counter() - started
            runners = {
                "encode each step": lambda o=common, w=work: step_times(o, args.steps, args.warmup, w / "encode"),
                "code cache": lambda o=cached_run, w=work: step_times(o, args.steps, args.warmup, w / "cached"),
            }
            times = interleaved_runs(runners, args.repeats)
            (wall_e, cpu_e), (wall_c, cpu_c) = ([median(run[i] for run in times[name]) for i in (0, 1)]
                                                for name in ("encode each step", "code cache"))
            print(f"{size} px ({args.num_train} scenes, batch 32), CPU ms per step: encode each step "
                  f"{cpu_e * 1e3:.1f}, "
                  f"code cache {cpu_c * 1e3:.1f} -> {cpu_e / cpu_c:.2f}x (wall ms {wall_e * 1e3:.1f} vs "
                  f"{wall_c * 1e3:.1f} -> {wall_e / wall_c:.2f}x); first run with the cache empty (encodes the "
                  f"split, then 1 step) {fill:.1f} s wall")


if __name__ == "__main__":
    main()
