"""Hydra multirun + DDP.

For ranks > 0 Lightning re-launches ``sys.argv`` with ``hydra.run.dir`` set to the job's run dir. In a
multirun job, ``sys.argv`` is the whole sweep (``-m model=a,b``) and ``hydra.run.dir`` is not where the job
writes, so every child would run the entire sweep on its own. Inside a multirun job this context makes
the re-launched command the job itself: its own overrides, as a single run, in the job's directory.

Lightning's launcher also leaves the rendezvous variables (LOCAL_RANK, WORLD_SIZE, MASTER_PORT, ...) in
``os.environ`` and the process group initialised. The next job of the sweep, in the same process, would
then believe it was started by an external launcher and wait for ranks that never come, so both are
restored when the job ends.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict, read_write

RENDEZVOUS_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@contextmanager
def hydra_job_for_ddp() -> Iterator[None]:
    """Run one Hydra job (single or multirun) so that DDP child processes re-run exactly this job."""
    environment = {name: os.environ.get(name) for name in RENDEZVOUS_VARIABLES}
    argv = list(sys.argv)
    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    multirun = hydra_cfg is not None and hydra_cfg.mode == RunMode.MULTIRUN
    if multirun:
        previous_run_dir = hydra_cfg.run.dir
        sys.argv = [argv[0], *hydra_cfg.overrides.task]
        with read_write(hydra_cfg), open_dict(hydra_cfg):
            hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        if multirun:
            sys.argv = argv
            with read_write(hydra_cfg), open_dict(hydra_cfg):
                hydra_cfg.run.dir = previous_run_dir
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
            for name, value in environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
