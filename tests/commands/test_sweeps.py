"""Hydra multirun, alone and with DDP jobs (trainer=ddp_sim), run as a user would from the shell."""

import pytest
import torch
from hydra_compose import run_entry_point

TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "metrics=none",
]


def multirun(tmp_path, *overrides):
    return run_entry_point(
        "parti_exp.train", "-m", *overrides, *TINY, f"hydra.sweep.dir={tmp_path}", f"paths.root_dir={tmp_path}"
    )


def job(tmp_path, number):
    ckpt = torch.load(tmp_path / str(number) / "checkpoints" / "last.ckpt", weights_only=False)
    return ckpt["parti_exp_config"], ckpt["gan_steps"]


@pytest.mark.slow
def test_each_job_runs_in_its_own_directory_with_its_own_logs(tmp_path):
    multirun(tmp_path, "model=dcgan,wgan_gp")
    for number, (_model, n_critic) in enumerate([("dcgan", 1), ("wgan_gp", 5)]):
        config, steps = job(tmp_path, number)
        assert config["model"]["n_critic"] == n_critic
        assert steps == {"d_step": 3, "g_step": 3 // n_critic}
        assert config["paths"]["output_dir"] == str(tmp_path / str(number))
        assert (tmp_path / str(number) / "csv" / "metrics.csv").is_file()
        assert (tmp_path / str(number) / "samples" / "epoch_0000.png").is_file()


@pytest.mark.slow
def test_multirun_with_ddp_jobs_relaunches_each_job_not_the_sweep(tmp_path):
    # A DDP job, then a single-process job in the same sweep: the DDP job's second rank must run that
    # job only (inside its directory), and the next job must not inherit the first one's rendezvous.
    multirun(tmp_path, "trainer=ddp_sim,cpu", "model=wgan_gp")
    ddp_config, ddp_steps = job(tmp_path, 0)
    cpu_config, cpu_steps = job(tmp_path, 1)
    assert ddp_config["trainer"]["devices"] == 2 and cpu_config["trainer"]["devices"] == 1
    assert ddp_steps == cpu_steps == {"d_step": 3, "g_step": 0}
    # Hydra names the log file of a re-launched rank after its job name
    assert (tmp_path / "0" / "train_ddp_process_1.log").is_file()
    assert not (tmp_path / "1" / "train_ddp_process_1.log").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1"]
