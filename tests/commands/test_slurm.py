"""hydra/launcher=slurm cannot run here (no SLURM): check the sbatch job it would submit."""

import os

import pytest
import submitit
from hydra import compose, initialize_config_dir
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

from parti_exp import CONF_DIR


class Submitted(Exception):
    """Raised instead of calling sbatch; carries the executor that would have submitted."""


def sbatch_script(tmp_path, monkeypatch, *overrides) -> str:
    # submitit refuses to build a SLURM executor where `srun` is not on PATH; this one is never run.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(
            config_name="train",
            overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}", f"paths.root_dir={tmp_path}",
                       f"paths.output_dir={tmp_path}/job", *overrides],
            return_hydra_config=True,
        )
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    launcher = SlurmLauncher(**params)
    launcher.config = cfg

    def capture(executor, *args, **kwargs):
        raise Submitted(executor)

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    with pytest.raises(Submitted) as submitted:
        launcher.launch([["model=wgan_gp"]], initial_job_idx=0)
    return submitted.value.args[0]._executor._make_submission_file_text("python -m parti_exp.train", "uid")


def test_one_gpu_job(tmp_path, monkeypatch):
    script = sbatch_script(tmp_path, monkeypatch, "hydra.launcher.partition=gpu", "trainer=gpu")
    for line in ("--partition=gpu", "--gpus-per-node=1", "--ntasks-per-node=1", "--nodes=1", "--time=1440",
                 "--cpus-per-task=8", "--mem=64GB", "--job-name=train", "--signal=USR2@120"):
        assert f"#SBATCH {line}" in script, line


def test_multinode_ddp_job_has_one_task_per_gpu_on_every_node(tmp_path, monkeypatch):
    script = sbatch_script(
        tmp_path, monkeypatch, "trainer=multinode", "trainer.num_nodes=2", "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.timeout_min=120", "hydra.launcher.account=lab",
    )
    for line in ("--nodes=2", "--gpus-per-node=4", "--ntasks-per-node=4", "--time=120", "--account=lab"):
        assert f"#SBATCH {line}" in script, line
    assert str(tmp_path / ".submitit") in script  # logs next to the sweep's outputs
