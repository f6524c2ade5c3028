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

from parti_exp.builders import build_datamodule, build_module  # noqa: E402
from parti_exp.train import train  # noqa: E402


def built_for_hand_loop(overrides: list[str], workdir: Path):
    """The module (nets, loss, optimizers) and an iterator over the train batches that ``overrides`` build, seeded as
    ``train`` seeds them: what a hand-written loop starts from."""
    from lightning.pytorch import seed_everything

    cfg = compose_train(workdir, *overrides, fast=False)
    seed_everything(cfg.seed)
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    datamodule.setup()
    return module, iter(datamodule.train_dataloader())


class StepTimer(Callback):
    """Wall time of each training step after the warm-up: from the start of one batch to the start of the next
    (Lightning's work between batches included), the last one to the end of its batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.starts: list[float] = []
        self.end = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx >= self.warmup:
            self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()

    @property
    def step_seconds(self) -> list[float]:
        return durations(self.starts, self.end)


def durations(starts: list[float], end: float) -> list[float]:
    """Each step's seconds from the start times of consecutive steps and the end of the last."""
    stamps = [*starts, end]
    return [b - a for a, b in zip(stamps, stamps[1:])]


def framework_step_times(overrides: list[str], steps: int, warmup: int, workdir: Path) -> list[float]:
    """Seconds of each training step of the GANModule under Lightning, for the composed config: the training loop
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
    return timer.step_seconds


def framework_step_time(overrides: list[str], steps: int, warmup: int, workdir: Path) -> float:
    """Mean seconds per step of ``framework_step_times``."""
    seconds = framework_step_times(overrides, steps, warmup, workdir)
    return sum(seconds) / len(seconds)


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
