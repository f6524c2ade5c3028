"""How many intra-op threads a CPU run uses (``trainer.cpu_threads``): a fixed number, or ``auto``, which times real
training steps at each candidate count and keeps the fastest, again every ``retune_s`` seconds.

Why: PyTorch starts one intra-op thread per core, and every parallel region (each conv, each matmul) ends at a
barrier that waits for all of them. On a machine where other processes hold some cores, the OS runs one of our
threads late at nearly every barrier, and a step of the small nets of a CPU run takes many times longer than on one
thread (on 2 cores with two other busy processes, the default digits run went from 1.5 to 20+ s per epoch; numbers in
docs/benchmarks.md). On a quiet machine the extra threads do help, so no fixed count is right for both: ``auto``
measures. The count changes the speed only: the kernels that these nets use give bit-identical results for any
thread count (tests/callbacks/test_cpu_threads.py checks it), so a resumed or repeated run draws the same numbers.

A run on a GPU (or any accelerator but the CPU) is left exactly as it is.
"""

from __future__ import annotations

import logging
import statistics
import time

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.accelerators import CPUAccelerator

from parti_exp.errors import ConfigError

log = logging.getLogger(__name__)


def candidate_counts(most: int) -> list[int]:
    """``most``, then halving down to 1: [8, 4, 2, 1]. Tried in this order, so a tie keeps the larger count."""
    counts = [most]
    while counts[-1] > 1:
        counts.append(counts[-1] // 2)
    return counts


class ThreadCountTrial:
    """Times ``steps_per_count`` steps at each candidate count (the first step after a switch is not timed: the
    thread pool resizes in it) and then names the count with the smallest median step time."""

    def __init__(self, counts: list[int], steps_per_count: int = 3) -> None:
        self.counts = counts
        self.steps_per_count = steps_per_count
        self.times: dict[int, list[float]] = {n: [] for n in counts}
        self._index = 0
        self._skip_next = True

    @property
    def count(self) -> int:
        """The count the next step should run with."""
        return self.counts[self._index]

    @property
    def done(self) -> bool:
        return self._index == len(self.counts)

    def record(self, seconds: float) -> None:
        if self._skip_next:
            self._skip_next = False
            return
        self.times[self.count].append(seconds)
        if len(self.times[self.count]) == self.steps_per_count:
            self._index += 1
            self._skip_next = True

    def fastest(self) -> int:
        return min(self.counts, key=lambda n: statistics.median(self.times[n]))


class CpuThreads(Callback):
    """``threads``: a positive int (fixed), or ``"auto"`` (measured, see the module docstring). The count PyTorch has
    when training starts is the most ``auto`` tries (one per core, or what OMP_NUM_THREADS / DDP's launcher set)."""

    def __init__(self, threads: int | str = "auto", retune_s: float = 30.0, first_trial_step: int = 5) -> None:
        if not (threads == "auto" or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1)):
            raise ConfigError(f"trainer.cpu_threads must be `auto` or a positive integer, got {threads!r}")
        self.threads = threads
        self.retune_s = retune_s
        self.first_trial_step = first_trial_step
        self._active = False
        self._restore = 0
        self._trial: ThreadCountTrial | None = None
        self._next_trial_at = 0.0
        self._steps_seen = 0
        self._step_start = 0.0
        self._chosen = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._active = isinstance(trainer.accelerator, CPUAccelerator)
        if not self._active:
            return
        self._restore = torch.get_num_threads()
        if self.threads != "auto":
            torch.set_num_threads(self.threads)
        self._steps_seen = 0
        self._next_trial_at = 0.0
        self._chosen = 0

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch, batch_idx: int) -> None:
        if not self._active or self.threads != "auto":
            return
        self._steps_seen += 1
        due = self._steps_seen >= self.first_trial_step and time.monotonic() >= self._next_trial_at
        if self._trial is None and due:
            self._trial = ThreadCountTrial(candidate_counts(self._restore))
        if self._trial is not None:
            torch.set_num_threads(self._trial.count)
            self._step_start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if self._trial is None:
            return
        self._trial.record(time.perf_counter() - self._step_start)
        if self._trial.done:
            chosen = self._trial.fastest()
            if chosen != self._chosen:  # the first choice, and every change after it
                times = ", ".join(f"{n}: {statistics.median(t) * 1e3:.0f} ms" for n, t in self._trial.times.items())
                log.info("CPU threads: %d (median step time per thread count: %s)", chosen, times)
            torch.set_num_threads(chosen)
            self._chosen = chosen
            self._trial = None
            self._next_trial_at = time.monotonic() + self.retune_s

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._active:
            torch.set_num_threads(self._restore)
            self._trial = None
