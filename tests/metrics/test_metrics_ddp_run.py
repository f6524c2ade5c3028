"""The metrics callback in a real DDP run (trainer=ddp_sim, 2 processes): every rank holds the whole real kNN
subset (computed on a cache miss, loaded by rank 0 alone on a hit, broadcast either way), and the generated
images of both ranks are counted once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra_compose import REPO_ROOT, subprocess_env
from metrics_ddp_job import NUM_FAKE

JOB = Path(__file__).with_name("metrics_ddp_job.py")


@pytest.mark.slow
def test_every_rank_measures_against_the_whole_real_subset_on_a_miss_and_a_hit(tmp_path):
    cache = tmp_path / "cache"
    runs = {}
    for attempt in ("miss", "hit"):
        out = tmp_path / attempt
        out.mkdir()
        command = [sys.executable, str(JOB), str(out), str(cache)]
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=subprocess_env())
        assert done.returncode == 0, done.stderr[-4000:]
        runs[attempt] = [torch.load(out / f"rank{rank}.pt") for rank in (0, 1)]
        if attempt == "miss":
            assert len(list((cache / "real_knn").glob("digits-train-*-knn1000-k3-5.pt"))) == 1
    for attempt, (rank0, rank1) in runs.items():
        assert rank0["real"].shape == (1000, 128) and torch.equal(rank0["real"], rank1["real"]), attempt
        # Shares of the 101 images of both ranks: multiples of 1/101, the same on each rank.
        assert torch.equal(rank0["shares"], rank1["shares"]), attempt
        counts = rank0["shares"] * NUM_FAKE
        assert torch.allclose(counts, counts.round(), atol=1e-9) and counts.sum().round() == NUM_FAKE, attempt
        for key in ("precision_clf", "recall_clf", "density_clf", "coverage_clf", "min_class_share_clf"):
            assert rank0["logged"][f"val/{key}"] == rank1["logged"][f"val/{key}"], (attempt, key)
    # The hit loaded exactly what the miss computed: the same seeded run measures the same values.
    assert torch.equal(runs["miss"][0]["real"], runs["hit"][0]["real"])
    for key, value in runs["miss"][0]["logged"].items():
        assert runs["hit"][0]["logged"][key] == pytest.approx(value, rel=1e-6), key
