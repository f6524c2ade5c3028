"""The metric values: the Fréchet distance against its closed form, a set against itself, agreement with
torch-fidelity on the same images and weights, and identical values under DDP."""

from __future__ import annotations

import math

import pytest
import torch
import torch.multiprocessing as mp
import torch_fidelity
from metrics_ddp_worker import KWARGS, NUM_REAL_KNN, Identity, all_values, run

from parti_exp.evaluate import evaluate
from parti_exp.metrics.digit_classifier import load_or_train_classifier
from parti_exp.metrics.feature_metrics import FeatureMetrics
from parti_exp.metrics.prdc import real_state


def with_moments(n: int, mean: torch.Tensor, variance: torch.Tensor, seed: int) -> torch.Tensor:
    """n samples whose empirical mean and (unbiased) covariance are exactly ``mean`` and ``diag(variance)``."""
    z = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T  # whitened: covariance exactly I
    return mean + z * variance.sqrt()


def test_frechet_distance_of_two_gaussians_matches_the_closed_form():
    mu1, s1 = torch.tensor([0.0, 1.0, -2.0, 0.5]).double(), torch.tensor([1.0, 4.0, 0.25, 2.0]).double()
    mu2, s2 = torch.tensor([1.0, 1.0, 0.0, -0.5]).double(), torch.tensor([2.0, 1.0, 1.0, 2.0]).double()
    # Diagonal covariances: ||mu1 - mu2||^2 + sum(s1 + s2 - 2 sqrt(s1 s2)) = 6 + (3 - 2 sqrt(2)) + 1 + 0.25 + 0
    expected = float((mu1 - mu2).square().sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert expected == pytest.approx(10.25 - 2 * math.sqrt(2))

    metrics = FeatureMetrics(Identity(4), is_splits=1, kid_subsets=1, kid_subset_size=10)
    metrics.update(with_moments(500, mu1, s1, seed=0), real=True)
    metrics.update(with_moments(300, mu2, s2, seed=1), real=False)
    assert metrics.compute()["fid"] == pytest.approx(expected, rel=1e-9)


def test_a_set_against_itself_scores_zero(digits, metrics_cache):
    net = load_or_train_classifier(
        digits.train_set, digits.val_set, 10, metrics_cache, torch.device("cpu"), "digits"
    ).net
    train = torch.from_numpy(digits.train_set.images)

    def scores(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        metrics = FeatureMetrics(net, is_splits=2, kid_subsets=5, kid_subset_size=len(fake))
        metrics.update(real, real=True)
        metrics.update(fake, real=False)
        return metrics.compute()

    noisy = (train.float() + torch.randn(train.shape, generator=torch.Generator().manual_seed(0)) * 40).clamp(0, 255)
    itself, other = scores(train, train), scores(train, noisy.to(torch.uint8))
    assert other["fid"] > 0.1 and other["kid"] > 0.01
    assert abs(itself["fid"]) < 1e-6 * other["fid"]
    # KID's unbiased estimate is zero only in expectation (its within-set sums leave out the diagonal).
    assert abs(itself["kid"]) < 0.2 * other["kid"]


def test_metrics_on_folders_equal_torch_fidelity(evaluate_cfg, tmp_path, inception_weights, digit_folders):
    real, fake = digit_folders
    # torch-fidelity shuffles IS splits and draws KID subsets with its own RNG: one IS split and KID subsets
    # of all 10 images make both libraries' estimates deterministic, so they must agree exactly.
    cfg = evaluate_cfg(
        f"real_dir={real}", f"fake_dir={fake}", f"metrics.weights_path={inception_weights}",
        "metrics.is_splits=1", "metrics.kid_subsets=2", "metrics.kid_subset_size=10", "device=cpu",
    )
    ours = evaluate(cfg, tmp_path / "out")
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fake), input2=str(real), cuda=False, isc=True, fid=True, kid=True, prc=True, verbose=False,
        # One extractor for all four: torch-fidelity's precision/recall then use the same 2048-d pool features.
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(inception_weights),
        isc_splits=1, kid_subsets=2, kid_subset_size=10,
        save_cpu_ram=True, cache=False,  # save_cpu_ram: no DataLoader worker processes
    )
    assert (ours["num_real"], ours["num_fake"]) == (10, 10)
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)
    assert ours["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    # KID is a difference of kernel sums (cubic in float32 features) that nearly cancel: features extracted in other
    # batches differ in the last bits, which moves a KID of 3e-3 by ~5e-7 (measured with one thread)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-3)
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-6)
    assert {"density", "coverage"} <= set(ours) and "min_class_share" not in str(ours)  # no classes in Inception
    assert ours["fid"] > 1.0 and ours["is"] > 1.0  # the weights are random but not degenerate
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_ddp_ranks_count_every_real_image_once(tmp_path):
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(40, 6, generator=generator, dtype=torch.float64)
    fake = torch.randn(30, 6, generator=generator, dtype=torch.float64) + 0.5
    mp.spawn(run, args=(2, str(tmp_path / "init"), real, fake, str(tmp_path / "out.pt")), nprocs=2)
    results = torch.load(tmp_path / "out.pt")

    def single_process(real_order: torch.Tensor) -> dict[str, float]:
        metrics = FeatureMetrics(Identity(6), **KWARGS)
        metrics.update(real_order, real=True)
        metrics.prdc.set_real(real_state(real.float(), NUM_REAL_KNN))
        metrics.update(fake, real=False)
        return all_values(metrics)

    # KID draws its subsets by position: sharded extraction gathers rank 0's rows first, then rank 1's.
    expected = {"cached": single_process(real), "sharded": single_process(torch.cat([real[0::2], real[1::2]]))}
    for case, want in expected.items():
        got = results[case]
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-6), (case, key)
    assert int(results["gathered"]["real_features_num_samples"]) == len(real)
    assert torch.allclose(results["gathered"]["real_features_sum"], real.sum(0))
    assert math.isfinite(results["cached"]["fid"]) and results["cached"]["kid"] > 0
    # Not at their bounds, so that equal values above mean every rank's generated samples were counted.
    assert 0 < results["cached"]["recall"] < 1 and 0 < results["cached"]["coverage"] < 1
    assert sum(results["cached"][f"share_{i}"] for i in range(6)) == pytest.approx(1)
