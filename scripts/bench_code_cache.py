"""Stage-2 training step time with the tokenizer's codes cached (``model.code_cache=true``) against encoding every
batch with the frozen tokenizer (the default), same config, same machine, interleaved runs.

    python scripts/bench_code_cache.py [--steps 30] [--warmup 5] [--repeats 3] [--sizes 32 64]

For each image size: a stage-1 tokenizer of ``experiment=tokenizer_scenes`` trained for two steps (its weights do
not change the cost of a step, its architecture does), then ``experiment=parti_scenes`` over it at that size. The
one-time encoding of the training split into the cache is reported apart (it happens before the timed steps).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

from step_timing import compose_train, describe_machine, framework_step_times, interleaved_runs

from parti_exp.train import train


def tokenizer(workdir: Path, size: int) -> Path:
    train(compose_train(workdir, "experiment=tokenizer_scenes", f"data.img_size={size}", "data.num_train=2000",
                        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "~logger",
                        "trainer.max_epochs=1", fast=False))
    return workdir / "run" / "checkpoints" / "last.ckpt"


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
                      f"data.num_train={args.num_train}", "trainer.cpu_threads=auto"]
            cache = work / "codes"
            started = time.perf_counter()
            framework_step_times(cached_run := [*common, "model.code_cache=true", f"model.code_cache_dir={cache}"],
                                 1, 0, work / "fill")
            fill = time.perf_counter() - started
            runners = {
                "encode each step": lambda o=common, w=work: median(framework_step_times(o, args.steps, args.warmup,
                                                                                         w / "encode")),
                "code cache": lambda o=cached_run, w=work: median(framework_step_times(o, args.steps, args.warmup,
                                                                                       w / "cached")),
            }
            times = interleaved_runs(runners, args.repeats)
            encode, cached = median(times["encode each step"]), median(times["code cache"])
            print(f"{size} px ({args.num_train} scenes, batch 32): encode each step {encode * 1e3:.1f} ms, "
                  f"code cache {cached * 1e3:.1f} ms per step -> {encode / cached:.2f}x; "
                  f"runs (ms): {[round(t * 1e3, 1) for t in times['encode each step']]} vs "
                  f"{[round(t * 1e3, 1) for t in times['code cache']]}; first run with the cache empty (encodes "
                  f"the split, then 1 step) {fill:.1f} s")


if __name__ == "__main__":
    main()
