"""Checkpoints in the tests: the files in tests/fixtures/checkpoints/, each written by `python -m parti_exp.train` at
the commit in its name (the tests that read checkpoints of earlier versions take them from here), an object that runs
a command when unpickled, and a comparison of two checkpoints' training state."""

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints"

# Commit 8d791b7: a tiny `experiment=tokenizer_digits` VQGAN (when VQGANModule lived in parti_exp.parti.vqgan_module)
# and a tiny `experiment=parti_digits` model trained on it (which recorded its tokenizer's architecture inside the
# stored run config).
OLD_TOKENIZER = FIXTURES / "vqgan_tokenizer_8d791b7.ckpt"
OLD_PARTI = FIXTURES / "parti_digits_8d791b7.ckpt"


# Commit 7a17d84, the last with every module at the package's top level (parti_exp.gan, parti_exp.ema, ...): one
# epoch of three batches of `model=stylegan_lite` (16 px, widths 8, latent_dim 16; EMA, lazy R1, the classifier
# metrics) and of `experiment=quickstart_vae model.net.width=8`, each with `trainer.cpu_threads=1`; beside each, the
# grid.png that `python -m parti_exp.sample ckpt_path=<it> n=8 device=cpu` drew from it at that commit (the GAN's with
# truncation=0.7).
OLD_STYLEGAN = FIXTURES / "stylegan_lite_7a17d84.ckpt"
OLD_VAE = FIXTURES / "vae_7a17d84.ckpt"


class RunsShell:
    """Pickles as a call of os.system: unpickling it runs the command (the attack weights-only loading guards
    against)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def assert_same_training_state(a: dict, b: dict) -> None:
    """Two checkpoints hold the same step counters, weights, optimizer states and LR schedules."""
    assert a["gan_steps"] == b["gan_steps"]
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, tensor in a["state_dict"].items():
        torch.testing.assert_close(tensor, b["state_dict"][key], rtol=0, atol=1e-6, msg=key)
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for pid, state in opt_a["state"].items():
            for name, value in state.items():
                torch.testing.assert_close(value, opt_b["state"][pid][name], rtol=0, atol=1e-6)
    assert [s["last_epoch"] for s in a["lr_schedulers"]] == [s["last_epoch"] for s in b["lr_schedulers"]]


def flip_tensor_bytes(path, count: int = 3, member: str = "data/0") -> None:
    """Flip ``count`` bytes in the middle of a ``torch.save`` archive's tensor ``member`` (the zip entry holding
    its raw data): what a bad disk block does, invisible to torch.load."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member))
    with open(path, "r+b") as file:
        file.seek(info.header_offset + 26)
        name_length, extra_length = np.frombuffer(file.read(4), dtype="<u2")
        start = info.header_offset + 30 + int(name_length) + int(extra_length) + info.file_size // 2
        file.seek(start)
        original = file.read(count)
        file.seek(start)
        file.write(bytes(b ^ 0xFF for b in original))
