"""A process of a data-parallel group that died (OOM killer, a lost node): the others stop with a message that says
so and how to continue, instead of a backend traceback.

When a peer dies, gloo's next collective fails at once with a socket error naming the peer ("Connection closed by
peer", "Connection reset by peer"); NCCL's watchdog reports a timed-out collective. Those messages are the backend's
only signal, so they are recognised by their text.
"""

from __future__ import annotations

from pathlib import Path

from parti_exp.errors import UserError
from parti_exp.runtime.checkpoint_integrity import newest_intact

# Text of the backends' errors when a peer of the group is gone.
PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator was aborted",
             "Watchdog caught collective operation timeout")


class LostWorkerError(UserError, RuntimeError):
    """Another process of the training group died; this one stopped instead of waiting for it."""


def lost_worker_error(error: BaseException, output_dir: str | Path, world_size: int) -> LostWorkerError | None:
    """The message for ``error`` when it says that a peer process died (in a group of ``world_size`` > 1), else
    None."""
    text = str(error)
    if world_size < 2 or not isinstance(error, RuntimeError) or not any(marker in text for marker in PEER_GONE):
        return None
    checkpoint = newest_intact(Path(output_dir) / "checkpoints")
    since = (f"the newest intact checkpoint is {checkpoint}" if checkpoint is not None
             else "no checkpoint was written yet")
    first_line = text.strip().splitlines()[0][:300]
    return LostWorkerError(
        f"another process of this training group died (the backend reports: {first_line}), so this one stopped "
        f"instead of waiting for it; {since}. Run the same command with ckpt_path=auto hydra.run.dir={output_dir} "
        "to continue from it (under torchrun --max-restarts N a restarted group does so by itself)"
    )
