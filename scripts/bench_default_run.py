"""The first run a user makes, timed and judged as a stranger would: a fresh output folder and an empty data cache,
`python -m parti_exp.train` with the README's defaults, then 300 samples from `python -m parti_exp.sample` read by
the outside judges (tests/judges.py: an RBF SVM and a nearest-neighbour reader on the 8x8 digits, which neither
training nor the metrics use).

    python scripts/bench_default_run.py [--n 300] [OVERRIDE ...]

Prints the wall time of the training command (classifier training and real-feature extraction included), the share
of samples each judge reads as a confident digit and the stricter of the two, the smallest digit's share, the
within-class spread against real digits, and the run's own last `val/precision_clf` and `val/coverage_clf`.
Overrides go to the training command (e.g. the previous default to compare against).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from judges import Verdict, judge_digits  # noqa: E402


@dataclass
class RunResult:
    seconds: float
    verdict: Verdict
    metrics: dict[str, float]  # the last logged value of each epoch metric

    def __str__(self) -> str:
        own = ", ".join(f"{key} {self.metrics.get(key, math.nan):.3f}" for key in REPORTED)
        return f"{self.verdict}; {own}"


REPORTED = ("val/precision_clf", "val/coverage_clf", "val/recall_clf", "val/fid_clf")


def last_metrics(run_dir: Path) -> dict[str, float]:
    """The last value of each column of the run's csv/metrics.csv (missing: no CSV logger)."""
    last: dict[str, float] = {}
    for path in sorted(run_dir.glob("csv/**/metrics.csv")):
        with path.open() as file:
            for row in csv.DictReader(file):
                last.update({key: float(value) for key, value in row.items() if value not in ("", None)})
    return last


def read_samples(folder: Path) -> torch.Tensor:
    """The sample command's PNGs (grid.png aside) as (N, 1, H, W) in [-1, 1]."""
    paths = sorted(p for p in folder.glob("*.png") if p.name != "grid.png")
    pixels = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in paths])
    return torch.from_numpy(pixels).unsqueeze(1) / 127.5 - 1


def default_run(overrides: list[str], n: int, workdir: Path, env: dict[str, str] | None = None) -> RunResult:
    """Train cold in ``workdir`` (its own data cache and run folder), then sample ``n`` images and judge them."""
    run_dir, cache = workdir / "run", workdir / "data"
    command = [
        sys.executable, "-m", "parti_exp.train", f"paths.data_dir={cache}", f"hydra.run.dir={run_dir}", *overrides
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    samples = workdir / "samples"
    subprocess.run(
        [
            sys.executable, "-m", "parti_exp.sample", f"ckpt_path={run_dir}/checkpoints/last.ckpt", f"n={n}",
            f"out_dir={samples}", f"hydra.run.dir={workdir / 'sample_run'}",
        ],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    return RunResult(seconds, judge_digits(read_samples(samples)), last_metrics(run_dir))


def describe_load() -> str:
    return f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="samples judged")
    parser.add_argument("--keep", type=Path, help="an empty folder to run in and keep (default: a temporary one)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {describe_load()}")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        result = default_run(args.overrides, args.n, args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = default_run(args.overrides, args.n, Path(tmp))
    print(f"train {' '.join(args.overrides) or '(defaults)'}: {result.seconds:.1f} s cold")
    print(f"judged on {args.n} samples: {result}")


if __name__ == "__main__":
    main()
