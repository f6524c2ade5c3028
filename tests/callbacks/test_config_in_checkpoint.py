"""What every checkpoint records of its run besides the config: the code's git commit and the training's wall time,
summed over the jobs of a resumed run (what a model card says of them)."""

import subprocess

from parti_exp.callbacks import config_in_checkpoint
from parti_exp.callbacks.config_in_checkpoint import RUN_KEY, ConfigInCheckpoint
from parti_exp.runtime.checkpoints import CONFIG_KEY
from parti_exp.runtime.source_version import PACKAGE_DIR, source_commit


def test_a_resumed_run_adds_this_jobs_time_to_the_earlier_jobs(monkeypatch):
    clock = iter([1000.0, 1042.5])
    monkeypatch.setattr(config_in_checkpoint.time, "monotonic", lambda: next(clock))
    callback = ConfigInCheckpoint({"model": {}})
    callback.on_load_checkpoint(None, None, {RUN_KEY: {"wall_time_s": 100.0, "git_commit": "older"}})
    callback.on_fit_start(None, None)
    checkpoint = {}
    callback.on_save_checkpoint(None, None, checkpoint)
    assert checkpoint[CONFIG_KEY] == {"model": {}}
    assert checkpoint[RUN_KEY] == {"git_commit": source_commit(), "wall_time_s": 142.5}


def test_the_commit_is_the_checkouts_head_marked_when_changed():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True).stdout.strip()
    assert source_commit() in (head, f"{head}-dirty")


def test_without_git_no_commit_is_claimed(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert source_commit() is None
