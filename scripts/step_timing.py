"""Shared by the benchmark scripts: time training steps of a real `python -m parti_exp.train` setup
(composed from conf/, built by parti_exp.builders) after a warm-up, without loggers or callbacks."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from statistics import median

import torch
from lightning.pytorch import Callback

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hydra_compose import compose_train  # noqa: E402

from parti_exp.train import train  # noqa: E402


class StepTimer(Callback):
    """Wall time per training step, from the end of the warm-up to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = 0.0
        self.end = 0.0
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= self.warmup:
            self.end = time.perf_counter()
            self.steps = batch_idx - self.warmup + 1

    @property
    def seconds_per_step(self) -> float:
        return (self.end - self.start) / self.steps


def framework_step_time(overrides: list[str], steps: int, warmup: int, workdir: Path) -> float:
    """Seconds per training step of the GANModule under Lightning, for the composed config: the training loop
    alone, without loggers and the config's callbacks (grids, checkpoints), which a hand loop does not have."""
    cfg = compose_train(
        workdir,
        *overrides,
        f"trainer.limit_train_batches={warmup + steps}",
        "trainer.limit_val_batches=0",
        "trainer.max_epochs=1",
        "~logger",
        "~callbacks",
        "metrics=none",
        fast=False,
    )
    timer = StepTimer(warmup)
    train(cfg, [timer])
    return timer.seconds_per_step


def interleaved_runs(runners: dict[str, callable], repeats: int) -> dict[str, list[float]]:
    """Run each measurement `repeats` times, interleaved (A B A B ...) so that load from other processes
    falls on all of them alike; return every value of each."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            times[name].append(run())
    return times


def interleaved_medians(runners: dict[str, callable], repeats: int) -> dict[str, float]:
    """The median of each measurement over `repeats` interleaved runs (``interleaved_runs``)."""
    return {name: median(values) for name, values in interleaved_runs(runners, repeats).items()}


def describe_machine() -> str:
    import os
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {load:.1f}"
    )
