"""How many intra-op threads a CPU run uses (``trainer.cpu_threads``): a fixed number, or ``auto``: as many as the
machine has idle cores when training starts (at least one, at most PyTorch's count then).

Why: PyTorch starts one intra-op thread per core, and every parallel region (each conv, each matmul) ends at a
barrier that waits for all of them. When other processes hold some of the cores, the OS runs one of our threads late
at nearly every barrier, and a step of the small nets of a CPU run takes many times longer than on one thread (on 2
cores with other jobs running, the default digits run went from about 1 to many seconds per epoch; numbers in
docs/benchmarks.md). On a quiet machine the extra threads do help, so no fixed count is right for both.

The count is chosen once, at the start, and not changed while training: some kernels (a convolution's weight gradient
summed over the batch) split their sums by thread, so the count moves the last bits of the results, and a run must
not depend on when the load changed. The count is stored in the checkpoint and a resumed run uses it again, so a
resume stays exact; two fresh ``auto`` runs under different load may differ in those last bits, as runs on two
machines do: fix ``trainer.cpu_threads`` for bit-identical repeats.

A run on a GPU (or any accelerator but the CPU) is left exactly as it is.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.accelerators import CPUAccelerator

from parti_exp.runtime.validation import require

log = logging.getLogger(__name__)

PROC_STAT = Path("/proc/stat")


def busy_cores(interval_s: float = 0.5) -> float:
    """Cores' worth of CPU time that other work used over ``interval_s`` (this process is asleep meanwhile). Work at a
    raised nice level does not count: the OS gives its core to us when we want it."""
    if PROC_STAT.is_file():
        first = _cpu_times()
        time.sleep(interval_s)
        second = _cpu_times()
        delta = [b - a for a, b in zip(first, second)]
        total = sum(delta[:8])  # user nice system idle iowait irq softirq steal
        busy = total - delta[1] - delta[3] - delta[4]  # all but nice, idle and iowait
        return (os.cpu_count() or 1) * busy / total if total else 0.0
    if hasattr(os, "getloadavg"):  # macOS: the 1-minute load average, a slower reading of the same thing
        return os.getloadavg()[0]
    return 0.0


def _cpu_times() -> list[int]:
    return [int(field) for field in PROC_STAT.read_text().split("\n", 1)[0].split()[1:]]


def idle_thread_count(most: int, busy: float) -> int:
    """One thread per idle core, rounded to the nearest core, between 1 and ``most``."""
    idle = (os.cpu_count() or 1) - busy
    return max(1, min(most, math.floor(idle + 0.5)))


class CpuThreads(Callback):
    """``threads``: a positive int (fixed), or ``"auto"`` (one per idle core at the start, see the module docstring).
    The count PyTorch has when training starts is the most ``auto`` uses (one per core, or what OMP_NUM_THREADS or
    DDP's launcher set)."""

    def __init__(self, threads: int | str = "auto") -> None:
        positive = isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1
        require(threads == "auto" or positive, "trainer.cpu_threads",
                f"must be `auto` or a positive integer, got {threads!r}")
        self.threads = threads
        self._active = False
        self._restore = 0
        self._used = 0  # the count this run trains with; from the checkpoint when resuming

    def state_dict(self) -> dict[str, Any]:
        return {"threads": self._used}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._used = int(state_dict.get("threads", 0))

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._active = isinstance(trainer.accelerator, CPUAccelerator)
        if not self._active:
            return
        self._restore = torch.get_num_threads()
        if self.threads != "auto":
            self._used = self.threads
        elif self._used:
            log.info("CPU threads: %d, as the run being resumed", self._used)
        else:
            busy = busy_cores()
            self._used = idle_thread_count(self._restore, busy)
            log.info("CPU threads: %d (%d cores, %.1f of them busy with other work)", self._used,
                     os.cpu_count() or 1, busy)
        torch.set_num_threads(self._used)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._active:
            torch.set_num_threads(self._restore)
