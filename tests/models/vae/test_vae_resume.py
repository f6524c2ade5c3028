"""A VAE run stopped by a preemption signal mid-epoch and resumed ends bit for bit where the run left alone ends."""

import os
import signal

import torch
from test_vae_module import FAST_VAE

from parti_exp.models.vae.module import VAEModule
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.train import train

# A checkpoint every 2 optimizer steps (every_n_g_steps counts them for a module with one optimizer).
RUN = [
    *FAST_VAE, "trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
    "trainer.deterministic=true", "model.kl_warmup_steps=5", "callbacks.model_checkpoint.every_n_g_steps=2",
]


def interrupt_after_step(monkeypatch, k: int) -> None:
    """SIGUSR1 to this process (handled by the Preemption callback) once optimizer step k is done."""
    original = VAEModule.training_step

    def training_step(self, batch, batch_idx):
        result = original(self, batch, batch_idx)
        if self.trainer.global_step == k:
            os.kill(os.getpid(), signal.SIGUSR1)
        return result

    monkeypatch.setattr(VAEModule, "training_step", training_step)


def test_preempted_and_resumed_vae_run_equals_the_uninterrupted_run(cfg_factory, tmp_path, monkeypatch):
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    train(cfg_factory(*RUN, f"paths.output_dir={full_dir}", fast=False))
    with monkeypatch.context() as patch:
        interrupt_after_step(patch, 3)  # mid-epoch 0, inside the KL warm-up
        train(cfg_factory(*RUN, f"paths.output_dir={cut_dir}", fast=False))
    assert read_checkpoint(cut_dir / "checkpoints" / "last.ckpt")["global_step"] == 3

    train(cfg_factory(*RUN, f"paths.output_dir={cut_dir}", "ckpt_path=last", fast=False))
    full, resumed = (read_checkpoint(d / "checkpoints" / "last.ckpt") for d in (full_dir, cut_dir))
    assert full["global_step"] == resumed["global_step"] == 8
    for key, tensor in full["state_dict"].items():
        torch.testing.assert_close(tensor, resumed["state_dict"][key], rtol=0, atol=1e-6, msg=key)
    for pid, state in full["optimizer_states"][0]["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(value, resumed["optimizer_states"][0]["state"][pid][name], rtol=0, atol=1e-6)
