"""Run by test_elastic_restart.py under torchrun: `torchrun --standalone --nproc-per-node 2 --max-restarts 1
elastic_job.py OUT_DIR KILL_AT OVERRIDE...`, one training run of trainer=multinode on the CPU. With KILL_AT > 0, in the
group's first attempt rank 1 SIGKILLs itself right after G step KILL_AT, as the OOM killer would: no handler runs, no
checkpoint is written. torchrun then restarts the group, which resumes by itself (ckpt_path=auto is the default of a
restarted group). Rank 0 records in OUT_DIR/fault.json when the kill happened and which G step the group resumed from.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hydra_compose import compose_train  # noqa: E402
from lightning.pytorch import Callback  # noqa: E402

from parti_exp.train import train  # noqa: E402

ATTEMPT = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


class Fault(Callback):
    def __init__(self, out_dir: Path, kill_at: int) -> None:
        self.record = out_dir / "fault.json"
        self.kill_at = kill_at

    def on_train_start(self, trainer, pl_module) -> None:
        if ATTEMPT > 0 and trainer.global_rank == 0:
            record = json.loads(self.record.read_text())
            record.update(resumed_at=time.time(), resumed_g_step=pl_module.progress_step, attempt=ATTEMPT)
            self.record.write_text(json.dumps(record))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if ATTEMPT == 0 and trainer.global_rank == 1 and pl_module.progress_step == self.kill_at:
            self.record.write_text(json.dumps({"killed_at": time.time(), "killed_after_g_step": self.kill_at}))
            os.kill(os.getpid(), signal.SIGKILL)


def main(out_dir: Path, kill_at: int, overrides: list[str]) -> None:
    if ATTEMPT > 0 and os.environ["RANK"] == "0":
        # Rank 1 of the restarted group reaches the rendezvous first, as it does when rank 0 is slower to load: it
        # must wait for rank 0's new address, not read the one the dead group left in the launcher's store.
        time.sleep(5)
    cfg = compose_train(out_dir, "trainer=multinode", "trainer.num_nodes=1", "trainer.devices=2", *overrides)
    train(cfg, [Fault(out_dir, kill_at)] if kill_at > 0 else [])


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
