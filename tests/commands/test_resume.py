"""Exact resume: a run interrupted at step k and resumed ends with the same weights, optimizer state, EMA,
schedules and counters as the same run left alone, bit for bit on the CPU with deterministic algorithms."""

import os
import shutil
import signal

import pytest
import torch
from checkpoint_helpers import assert_same_training_state

from parti_exp.callbacks.preemption import Preempted
from parti_exp.data.epoch_sampler import EpochShardSampler
from parti_exp.models.gan.module import AdversarialModule, GANModule
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.train import train

# 3 epochs of 6 batches; a checkpoint every 2 G steps; EMA and an LR schedule so their state is exercised too.
RUN = [
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=6",
    "trainer.limit_val_batches=2",
    "trainer.deterministic=true",
    "data.batch_size=16",
    "callbacks.model_checkpoint.every_n_g_steps=2",
    "model.ema={_target_:parti_exp.models.gan.ema.EMA,beta:0.9,half_life_images:null,rampup:null}",
    "model.d_scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:2,gamma:0.9}",
]


def interrupt_after_d_step(monkeypatch, k: int) -> None:
    """Send this process SIGUSR1 (a real signal, handled by the Preemption callback) once D step k is done."""
    original = AdversarialModule.training_step

    def training_step(self, batch, batch_idx):
        result = original(self, batch, batch_idx)
        if self.d_step == k:
            os.kill(os.getpid(), signal.SIGUSR1)
        return result

    monkeypatch.setattr(AdversarialModule, "training_step", training_step)


def final_state(run_dir) -> dict:
    return read_checkpoint(run_dir / "checkpoints" / "last.ckpt")


# The image tokenizer, resumed between its reconstruction-only warm-up and the start of its adversary.
VQGAN = ("data.img_size=16", "model.generator.codebook_size=16", "model.adversarial_start=7")
# Image-to-image: pix2pix on a task that draws its inputs (noise) on the device; CycleGAN with a pool that is full, and
# swapping, by the time of the cut.
PIX2PIX = ("task=denoise",)
CYCLEGAN = ("data=digit_styles", "model.pool_size=20")
# ADA adjusting p every 2 D steps by 32/2000 (never reaching 0 or 1 in 18 D steps, where it would stop moving), so
# p, its running sign sum and r_t all matter at the cut and after it (target 0.4: at the cut, D step 5's decision
# depends on the sign sum of step 4, which only the checkpoint holds; with it lost the run diverges).
ADA = ("augment=ada", "augment.pipeline.interval=2", "augment.pipeline.speed_images=2000",
       "augment.pipeline.initial_p=0.5", "augment.pipeline.target=0.4")


@pytest.mark.slow
@pytest.mark.parametrize(
    "model,k,extra",
    [
        ("dcgan", 3, ()),  # mid-epoch (batch 3 of 6)
        ("dcgan", 6, ()),  # the last batch of epoch 0, before its validation and epoch-end hooks
        ("wgan_gp", 8, ()),  # mid-epoch in epoch 1, between two G steps of the n_critic=5 schedule
        ("vqgan", 5, VQGAN),
        ("pix2pix", 4, PIX2PIX),
        ("cyclegan", 4, CYCLEGAN),  # 3 batches of 16 per domain fill the pool of 20 before the cut
        ("dcgan", 5, ADA),  # between two adjustments of p: the sign sum of D step 4 is in the checkpoint
    ],
)
def test_interrupted_and_resumed_run_equals_the_uninterrupted_run(cfg_factory, tmp_path, monkeypatch, model, k, extra):
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    train(cfg_factory(f"model={model}", *RUN, *extra, f"paths.output_dir={full_dir}"))

    with monkeypatch.context() as patch:
        interrupt_after_d_step(patch, k)
        train(cfg_factory(f"model={model}", *RUN, *extra, f"paths.output_dir={cut_dir}"))
    saved = final_state(cut_dir)
    assert saved["gan_steps"]["d_step"] == k, "the preemption checkpoint is the state right after D step k"

    train(cfg_factory(f"model={model}", *RUN, *extra, f"paths.output_dir={cut_dir}", "ckpt_path=last"))
    assert_same_training_state(final_state(full_dir), final_state(cut_dir))


@pytest.mark.slow
def test_resuming_without_the_saved_rng_state_diverges(cfg_factory, tmp_path, monkeypatch):
    """The equality above is not trivial: drop the RNG states from the checkpoint and the runs differ."""
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    train(cfg_factory(*RUN, f"paths.output_dir={full_dir}"))
    with monkeypatch.context() as patch:
        interrupt_after_d_step(patch, 3)
        train(cfg_factory(*RUN, f"paths.output_dir={cut_dir}"))
    last = cut_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=False)
    checkpoint["callbacks"] = {k: v for k, v in checkpoint["callbacks"].items() if "RandomState" not in k}
    torch.save(checkpoint, last)
    train(cfg_factory(*RUN, f"paths.output_dir={cut_dir}", "ckpt_path=last"))
    full, resumed = final_state(full_dir), final_state(cut_dir)
    assert full["gan_steps"] == resumed["gan_steps"]
    assert any(not torch.equal(v, resumed["state_dict"][key]) for key, v in full["state_dict"].items())


def test_every_n_g_steps_refreshes_last_ckpt_mid_epoch(cfg_factory, tmp_path, monkeypatch):
    saved_at = []
    original = GANModule.on_save_checkpoint

    def record(self, checkpoint):
        original(self, checkpoint)
        saved_at.append((checkpoint["gan_steps"]["g_step"], self.trainer.current_epoch))

    monkeypatch.setattr(GANModule, "on_save_checkpoint", record)
    train(cfg_factory("model=wgan_gp", "model.n_critic=2", "trainer.limit_train_batches=9",
                      "trainer.limit_val_batches=1", "callbacks.model_checkpoint.every_n_g_steps=2"))
    # 9 D steps -> G steps at d_step 2, 4, 6, 8: last.ckpt at G steps 2 and 4, then the epoch-end pair
    # (epoch_0000.ckpt and last.ckpt) at G step 4.
    assert saved_at == [(2, 0), (4, 0), (4, 0), (4, 0)]


def test_ckpt_path_last_without_a_checkpoint_starts_fresh_and_a_run_dir_resolves(cfg_factory, tmp_path):
    run_dir = tmp_path / "run"
    train(cfg_factory("ckpt_path=last", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"))
    first = final_state(run_dir)
    assert first["gan_steps"] == {"g_step": 2, "d_step": 2}
    # A run directory as ckpt_path continues from its last.ckpt: one more epoch, two more steps each.
    train(cfg_factory(f"ckpt_path={run_dir}", "trainer.max_epochs=2", "trainer.limit_train_batches=2",
                      "trainer.limit_val_batches=1", f"paths.output_dir={tmp_path / 'next'}"))
    assert final_state(tmp_path / "next")["gan_steps"] == {"g_step": 4, "d_step": 4}


def test_preempted_is_reported_with_the_checkpoint(cfg_factory, tmp_path, monkeypatch, caplog):
    interrupt_after_d_step(monkeypatch, 2)
    with caplog.at_level("WARNING"):
        train(cfg_factory("trainer.limit_train_batches=5", "trainer.limit_val_batches=1"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert f"received SIGUSR1: saved {last} at G step 2 and stopped; resume with ckpt_path={last}" in caplog.text
    assert read_checkpoint(last)["gan_steps"] == {"g_step": 2, "d_step": 2}


def test_preemption_requeues_under_slurm(cfg_factory, tmp_path, monkeypatch):
    """With SLURM_JOB_ID set, rank 0 runs `scontrol requeue <job>` (a stand-in scontrol records its arguments)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "scontrol_args"}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    # Lightning reads SLURM_* variables to pick its cluster environment; keep it off for this process.
    monkeypatch.setenv("SLURM_JOB_NAME", "bash")
    interrupt_after_d_step(monkeypatch, 1)
    with pytest.raises(Preempted) as preempted:
        from parti_exp.builders import build_callbacks, build_datamodule, build_module, build_trainer

        cfg = cfg_factory("trainer.limit_train_batches=4", "trainer.limit_val_batches=1")
        trainer = build_trainer(cfg, build_callbacks(cfg), [])
        trainer.fit(build_module(cfg), datamodule=build_datamodule(cfg))
    assert preempted.value.requeued
    assert (tmp_path / "scontrol_args").read_text().split() == ["requeue", "4242"]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_epoch_shard_sampler_resumes_mid_epoch_and_shards_disjointly(world):
    shards = [EpochShardSampler(50, shuffle=True, seed=7, rank=r, world_size=world) for r in range(world)]
    for sampler in shards:
        sampler.set_epoch(3)
    epoch = [list(sampler) for sampler in shards]
    flat = [i for shard in epoch for i in shard]
    assert len(flat) == len(set(flat)) == 50 // world * world
    # Same (seed, epoch): same order; next epoch: another order.
    again = EpochShardSampler(50, shuffle=True, seed=7, rank=0, world_size=world)
    again.set_epoch(3)
    assert list(again) == epoch[0]
    again.set_epoch(4)
    assert list(again) != epoch[0]
    # Resumed after 5 items of epoch 3 on each rank: exactly the rest, once; then back to normal epochs.
    again.resume_at(3, 5 * world)
    assert list(again) == epoch[0][5:]
    assert list(again) == epoch[0]


def test_kill_during_save_leaves_previous_last_ckpt_loadable(tmp_path):
    """A writer SIGKILLed halfway through a checkpoint: last.ckpt is still the previous, complete one."""
    import subprocess
    import sys

    target = tmp_path / "last.ckpt"
    script = f"""
import os, signal, torch
from parti_exp.runtime.checkpoints import AtomicCheckpointIO
io = AtomicCheckpointIO()
io.save_checkpoint({{"step": 1, "w": torch.ones(1000)}}, {str(target)!r})
import builtins
real_open = builtins.open
class DyingFile:
    def __init__(self, file):
        self.file = file
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def write(self, data):
        self.file.write(bytes(data)[: len(data) // 2])  # half of the new checkpoint is on disk ...
        self.file.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # ... when the job is killed
def dying_open(path, mode="r", *args, **kwargs):
    file = real_open(path, mode, *args, **kwargs)
    return DyingFile(file) if "w" in mode and ".partial-" in str(path) else file
builtins.open = dying_open
io.save_checkpoint({{"step": 2, "w": torch.zeros(1000)}}, {str(target)!r})
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers[0] == "last.ckpt" and len(leftovers) == 2 and ".partial-" in leftovers[1]
    checkpoint = torch.load(target)
    assert checkpoint["step"] == 1 and torch.equal(checkpoint["w"], torch.ones(1000))
    # The next save clears what the killed writer left.
    from parti_exp.runtime.checkpoints import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"step": 3}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    assert torch.load(target)["step"] == 3
    shutil.rmtree(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_streaming_shards_resumes_mid_epoch_to_the_sample(cfg_factory, tmp_path, monkeypatch, workers):
    """data=webdataset: the checkpoint's stream position brings the resumed run to the same weights."""
    from parti_exp.data import DigitsDataModule
    from parti_exp.data.shard_writer import write_split

    digits = DigitsDataModule(img_size=16)
    for split in ("train", "val"):
        write_split(digits, split, tmp_path / "shards" / split, maxcount=300, image_format="png")
    shards = tmp_path / "shards"
    data = ["data=webdataset", f"data.urls={shards / 'train'}", f"data.val_urls={shards / 'val'}",
            "data.img_size=16", "data.channels=1", "data.caption_key=null", "data.val_samples=32",
            "data.reference_samples=64", f"data.num_workers={workers}", "metrics=none"]
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    train(cfg_factory("model=dcgan", *RUN, *data, f"paths.output_dir={full_dir}"))
    with monkeypatch.context() as patch:
        interrupt_after_d_step(patch, 9)  # batch 3 of epoch 1
        train(cfg_factory("model=dcgan", *RUN, *data, f"paths.output_dir={cut_dir}"))
    assert final_state(cut_dir)["gan_steps"]["d_step"] == 9
    train(cfg_factory("model=dcgan", *RUN, *data, f"paths.output_dir={cut_dir}", "ckpt_path=last"))
    assert_same_training_state(final_state(full_dir), final_state(cut_dir))
