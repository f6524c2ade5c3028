"""The VAE module on tiny nets: the importance-weighted bound, β = 0, the KL warm-up in a real fit, its protocols."""

import functools

import pytest
import torch
from lightning.pytorch import Callback

from parti_exp.errors import ConfigError
from parti_exp.models.vae.module import VAEModule
from parti_exp.models.vae.pixel_likelihood import PixelLikelihood
from parti_exp.nets.vae import ConvVAE
from parti_exp.protocols import BoundsLikelihood, LatentImageModel, MakesImagesForMetrics
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.runtime.guard import NonFiniteError
from parti_exp.train import train

FAST_VAE = [
    "model=vae", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
    "metrics=none", "model.net.width=8", "model.net.latent_dim=4", "model.iw_samples=4", "data.batch_size=32",
]


def tiny_vae(**kwargs) -> VAEModule:
    torch.manual_seed(0)
    net = functools.partial(ConvVAE, img_size=8, channels=1, latent_dim=4, width=8)
    return VAEModule(net, functools.partial(torch.optim.Adam, lr=1e-3), **kwargs)


def digit_batch(n: int = 64) -> torch.Tensor:
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images[:n]).float().unsqueeze(1) / 16
    return images * 2 - 1


def test_importance_weighted_bound_is_above_the_elbo_and_tightens_with_k():
    module = tiny_vae()
    # Decoder weights scaled up: p(x | z) varies strongly with z, so q(z | x) is far from the posterior and the
    # bounds are far apart, as early in training.
    with torch.no_grad():
        module.net.decoder[-1].weight.mul_(20)
    images = digit_batch()
    rng = torch.Generator().manual_seed(0)
    draws = {1: 60, 8: 20, 64: 20}  # enough draws of each mean bound for its noise to be well under the gaps
    means = {k: float(torch.stack([module.importance_weighted_log_likelihood(images, k, rng).mean()
                                   for _ in range(n)]).mean()) for k, n in draws.items()}
    elbos = []
    for _ in range(60):
        log_px, kl_dims, _ = module.elbo_parts(images, module.likelihood.discrete_log_prob, rng)
        elbos.append(float((log_px - kl_dims.sum(1)).mean().detach()))
    # k = 1 is a one-sample ELBO: its mean agrees with the ELBO with the KL in closed form.
    assert means[1] == pytest.approx(sum(elbos) / len(elbos), abs=0.01 * abs(means[1]))
    assert means[1] + 10 < means[8] < means[64] - 5, means  # measured: about -185, -127, -107 nats
    # Per image too, on average over the draws: the bound rises with k for every image.
    per_image = [torch.stack([module.importance_weighted_log_likelihood(images, k, rng) for _ in range(10)]).mean(0)
                 for k in (1, 64)]
    assert bool((per_image[1] > per_image[0]).all())


def test_beta_zero_leaves_the_kl_out_of_the_gradient():
    images = digit_batch(16)

    def gradients(module, loss):
        module.net.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in module.net.parameters()])

    autoencoder = tiny_vae(beta=0.0, likelihood="bernoulli")
    torch.manual_seed(1)
    terms, logs = autoencoder.loss_terms(images)
    assert set(terms) == {"recon"} and logs["train/kl_weight"] == 0.0 and float(logs["train/kl"]) > 0
    with_beta_zero = gradients(autoencoder, sum(terms.values()))
    torch.manual_seed(1)  # the same posterior draw
    log_px, _, _ = autoencoder.elbo_parts(images, autoencoder.likelihood.log_prob)
    assert torch.equal(with_beta_zero, gradients(autoencoder, -log_px.mean()))

    vae = tiny_vae(beta=1.0)
    torch.manual_seed(1)
    terms, _ = vae.loss_terms(images)
    assert set(terms) == {"recon", "kl"}
    assert not torch.allclose(gradients(vae, sum(terms.values())), with_beta_zero)


class KLWeights(Callback):
    """(optimizer steps before the batch, the KL weight the batch was trained with), per batch."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.seen.append((trainer.global_step - 1, float(trainer.callback_metrics["train/kl_weight"])))


def test_kl_warmup_follows_the_optimizer_step_count_across_a_resume(cfg_factory, tmp_path):
    first = KLWeights()
    schedule = ["model.beta=2.0", "model.kl_warmup_steps=10", "trainer.log_every_n_steps=1",
                "trainer.limit_train_batches=4", "trainer.limit_val_batches=1"]
    train(cfg_factory(*FAST_VAE, *schedule, "trainer.max_epochs=2", fast=False), [first])
    steps, weights = zip(*first.seen)
    assert steps == tuple(range(8)) and weights == pytest.approx([2.0 * step / 10 for step in steps])

    resumed = KLWeights()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    resume = cfg_factory(*FAST_VAE, *schedule, "trainer.max_epochs=4", f"ckpt_path={ckpt}", fast=False)
    result = train(resume, [resumed])
    # Lightning restores the step count: the warm-up goes on where it stopped and ends at β.
    steps, weights = zip(*resumed.seen)
    assert steps == tuple(range(8, 16)) and weights == pytest.approx([2.0 * min(step, 10) / 10 for step in steps])
    assert result.trainer.global_step == 16


def test_the_vae_speaks_the_protocols_of_sampling_metrics_and_evaluation():
    module = tiny_vae(likelihood="discretized_logistic")
    assert isinstance(module, LatentImageModel) and isinstance(module, MakesImagesForMetrics)
    assert isinstance(module, BoundsLikelihood)
    assert module.net.decoder[-1].out_channels == 2  # a mean and a log-scale per pixel
    images = module.generate_for_metrics(5, None, torch.Generator().manual_seed(0))
    again = module.generate_for_metrics(5, None, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 8, 8) and torch.equal(images, again)
    assert images.min() >= -1 and images.max() <= 1
    bounds = module.bits_per_dim(digit_batch(6), torch.Generator().manual_seed(0))
    assert bounds["bpd"].shape == bounds["bpd_iw"].shape == (6,)
    assert bool((bounds["bpd_iw"] > 0).all())


@pytest.mark.parametrize("setting, message", [
    ({"beta": -1.0}, "model.beta"), ({"kl_warmup_steps": 1.5}, "model.kl_warmup_steps"),
    ({"free_bits": -0.1}, "model.free_bits"), ({"iw_samples": 0}, "model.iw_samples"),
    ({"likelihood": "categorical"}, "model.likelihood"),
])
def test_bad_settings_are_refused_with_their_key(setting, message):
    with pytest.raises(ConfigError, match=message):
        tiny_vae(**setting)


@pytest.mark.parametrize("likelihood, precision", [("gaussian", "32-true"), ("discretized_logistic", "bf16-mixed")])
def test_each_likelihood_trains_and_measures_bits_per_8bit_dimension(cfg_factory, likelihood, precision):
    cfg = cfg_factory(*FAST_VAE, f"model.likelihood={likelihood}", f"precision={precision}", "trainer.max_epochs=1",
                      "trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "trainer.log_every_n_steps=1",
                      fast=False)
    metrics = train(cfg).metrics
    # Bits per 8-bit dimension: between 0 and the 8 bits of a uniform guess (a fresh model is near the top).
    assert 0 < metrics["val/bpd_iw"] <= metrics["val/bpd"] + 0.05 < 9
    assert {"train/elbo", "train/recon", "train/kl", "val/elbo", "val/active_units"} <= set(metrics)


def nan_reconstruction_at(monkeypatch, call: int) -> None:
    """The training loss is NaN at the ``call``-th training step (1-based)."""
    calls = []
    log_prob = PixelLikelihood.log_prob

    def broken(self, out, images):
        calls.append(1)
        value = log_prob(self, out, images)
        return value * float("nan") if len(calls) == call else value

    monkeypatch.setattr(PixelLikelihood, "log_prob", broken)


def test_the_guard_stops_or_skips_a_non_finite_vae_step(cfg_factory, tmp_path, monkeypatch):
    run = [*FAST_VAE, "trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1",
           "trainer.log_every_n_steps=1"]
    nan_reconstruction_at(monkeypatch, 2)
    with pytest.raises(NonFiniteError, match="non-finite loss=nan.*at VAE step 1"):
        train(cfg_factory(*run, fast=False))

    nan_reconstruction_at(monkeypatch, 2)
    result = train(cfg_factory(*run, "model.guard.skip_nonfinite=true", fast=False))
    assert result.metrics["train/skipped_steps"] == 1.0
    assert result.trainer.global_step == 3  # 4 batches, one update skipped: the warm-up did not advance for it
    last = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point())


def test_the_vae_quickstart_composes_a_small_vae_on_16px_digits(cfg_factory):
    cfg = cfg_factory("experiment=quickstart_vae", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                      "trainer.limit_val_batches=1", "metrics=none", "model.iw_samples=2", fast=False)
    assert cfg.model.net.width == 32 and cfg.data.img_size == 16 and cfg.trainer.accelerator == "cpu"
    module = train(cfg).module
    assert isinstance(module, VAEModule) and module.generate(torch.zeros(1, module.latent_dim)).shape == (1, 1, 16, 16)
