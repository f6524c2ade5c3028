"""ADA in the small-data regime: the default run (cgan_pd on the digits) trained on 200, 500 and all 1,617 training
digits, without and with `augment=ada`, for the same number of D steps; each judged as scripts/bench_default_run.py
judges the default run (300 samples from `python -m parti_exp.sample` read by the outside judges of tests/judges.py),
with `val/precision_clf` and `val/coverage_clf` from `python -m parti_exp.evaluate` in the feature space of one digit
classifier trained on all training digits (so that the 200-digit runs are measured in the same space as the others).

    nice -n 10 python scripts/bench_ada.py [--d-steps 1000] [--sizes 200 500 all] [--speed-images 20000] [OVERRIDE ...]

One training at a time, on one CPU thread. ADA's p moves by (images since the last adjustment) / `--speed-images`;
the paper's 500,000 would let p reach 0.13 in 1,000 D steps of 64 images, so the default lets it cross [0, 1] in about
300 D steps. Prints one line per run: the stricter judge's confident share, the smallest class, the within-class
spread, precision_clf, coverage_clf and ADA's final p.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_default_run import describe_load, read_samples

from parti_exp.data import DigitsDataModule
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.runtime.checkpoints import read_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from judges import judge_digits  # noqa: E402


def run(cmd: list[str]) -> None:
    subprocess.run([sys.executable, "-m", *cmd], check=True, stdout=subprocess.DEVNULL)


def one_run(workdir: Path, size: int | None, ada: bool, args: argparse.Namespace, classifier: Path) -> dict:
    run_dir = workdir / "run"
    overrides = [
        f"paths.data_dir={workdir / 'data'}", f"hydra.run.dir={run_dir}", f"data.num_train={size or 'null'}",
        # Equal D steps whatever the set's size (Lightning counts the G steps too: n_critic is 1 in the default run).
        "trainer.max_epochs=-1", f"trainer.max_steps={2 * args.d_steps}", "trainer.limit_val_batches=0",
        "trainer.cpu_threads=1", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=25",
        "metrics=none", "~callbacks.sample_grid",  # measured once at the end, below
        # A 200-digit run has 333 epochs: no per-epoch checkpoint or loss plot; last.ckpt once, at the last G step
        "callbacks.model_checkpoint.every_n_epochs=1000000",
        f"callbacks.model_checkpoint.every_n_g_steps={args.d_steps}", "~callbacks.loss_curves",
        *(["augment=ada", f"augment.pipeline.speed_images={args.speed_images}"] if ada else []),
        *args.overrides,
    ]
    start = time.perf_counter()
    run(["parti_exp.train", *overrides])
    seconds = time.perf_counter() - start
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    samples = workdir / "samples"
    data_dir = f"paths.data_dir={workdir / 'data'}"
    run(["parti_exp.sample", data_dir, f"ckpt_path={checkpoint}", f"n={args.n}", f"out_dir={samples}", "device=cpu",
         f"hydra.run.dir={workdir / 'sample_run'}"])
    run(["parti_exp.evaluate", data_dir, f"ckpt_path={checkpoint}", "metrics=classifier",
         f"classifier_ckpt={classifier}", "metrics.num_fake=2000", "metrics.real_split=train",
         "++data.num_train=null", "device=cpu",
         f"hydra.run.dir={workdir / 'evaluate_run'}"])
    values = json.loads((workdir / "evaluate_run" / "metrics.json").read_text())
    p = float(read_checkpoint(checkpoint)["state_dict"].get("augment.p", torch.tensor(0.0)))
    return {"seconds": seconds, "verdict": judge_digits(read_samples(samples)), "values": values, "p": p}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d-steps", type=int, default=1000)
    parser.add_argument("--sizes", nargs="+", default=["200", "500", "all"])
    parser.add_argument("--speed-images", type=int, default=20000)
    parser.add_argument("--n", type=int, default=300, help="samples judged")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {describe_load()}; {args.d_steps} D steps per run")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        digits = DigitsDataModule(img_size=16)
        digits.setup("fit")
        # One feature space for every run: a classifier of all training digits (a num_train run would train its own).
        classifier = load_or_train_classifier(digits.train_set, digits.val_set, 10, root / "classifier",
                                              torch.device("cpu"), dataset="digits").path
        print("| training digits | augment | stricter judge | smallest class | spread | precision_clf | coverage_clf "
              "| final p | train s |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for size in args.sizes:
            for ada in (False, True):
                number = None if size == "all" else int(size)
                result = one_run(root / f"{size}-{ada}", number, ada, args, classifier)
                verdict, values = result["verdict"], result["values"]
                print(f"| {size} | {'ada' if ada else 'none'} | {verdict.confident_share:.3f} | "
                      f"{verdict.min_class_share:.3f} | {verdict.spread:.2f} | {values['precision_clf']:.3f} | "
                      f"{values['coverage_clf']:.3f} | {result['p']:.3f} | {result['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
