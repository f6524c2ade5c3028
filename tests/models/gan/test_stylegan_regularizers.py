"""StyleGAN2's regularisers on a tiny stylegan_lite, each against its definition: path length against explicit
Jacobians, style mixing by the w each layer's affine receives, and the noise inputs' switches."""

import math

import pytest
import torch

from parti_exp.errors import ConfigError
from parti_exp.models.gan.regularizers import PathLengthPenalty, path_lengths
from parti_exp.nets.dcgan import DCGANGenerator
from parti_exp.nets.stylegan_lite import ModulatedConv2d, StyleGANLiteGenerator
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.train import train


def tiny(**kwargs) -> StyleGANLiteGenerator:
    torch.manual_seed(0)
    g = StyleGANLiteGenerator(latent_dim=4, img_size=16, channels=1, width=4, **kwargs)
    with torch.no_grad():
        for noise in g.noise_inputs:
            noise.strength.fill_(0.3)  # trained nets have non-zero strengths; zero would hide the noise
    return g


def reference_lengths(g: StyleGANLiteGenerator, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The definition, slowly: per image the full Jacobian of the image w.r.t. each layer's w, then J^T y."""
    lengths = []
    for i in range(len(ws)):
        jac = torch.autograd.functional.jacobian(lambda w: g.synthesis(w[None])[0], ws[i])  # C,H,W, num_ws, w_dim
        jt_y = torch.einsum("chwld,chw->ld", jac, noise[i])
        lengths.append(jt_y.square().sum(dim=1).mean().sqrt())
    return torch.stack(lengths)


def test_path_lengths_equal_explicit_jacobian_vector_products():
    g = tiny(style_mixing_prob=0.0).eval()
    ws = torch.randn(3, g.num_ws, 4)  # different w per layer: W+
    noise = torch.randn(3, 1, 16, 16) / 16
    fast = path_lengths(g.synthesis(ws.requires_grad_(True)), ws, noise)
    torch.testing.assert_close(fast, reference_lengths(g, ws.detach(), noise), rtol=1e-4, atol=1e-6)


def test_penalty_is_lazy_weighted_and_tracks_the_running_mean():
    g = tiny(style_mixing_prob=0.0).eval()  # eval: fixed noise, so the reference sees the same images
    pl = PathLengthPenalty(weight=2.0, every=4, decay=0.01, batch_shrink=2)
    pl.pl_mean.fill_(0.5)
    torch.manual_seed(7)
    penalty = pl(g, batch_size=6, labels=None)
    # The same draws, in the same order: 6 // 2 latents, then y ~ N(0, I) / sqrt(H * W).
    torch.manual_seed(7)
    z = torch.randn(3, 4)
    ws = g.map_to_w(z)[:, None].expand(-1, g.num_ws, -1).detach()
    y = torch.randn(3, 1, 16, 16) / math.sqrt(16 * 16)
    lengths = reference_lengths(g, ws, y)
    mean = 0.99 * 0.5 + 0.01 * lengths.mean()
    assert pl.pl_mean.item() == pytest.approx(mean.item(), rel=1e-4)
    assert penalty.item() == pytest.approx(4 * 2.0 * (lengths - mean).square().mean().item(), rel=1e-3)
    penalty.backward()  # differentiable: it trains G
    assert g.mapping.layers[0].weight.grad.abs().sum() > 0
    assert "pl_mean" in pl.state_dict()


def test_path_length_refuses_a_generator_without_w_space():
    with pytest.raises(ConfigError, match="no w space"):
        PathLengthPenalty().check(DCGANGenerator(latent_dim=8, img_size=16, channels=1, width=8))


def affine_inputs(g: StyleGANLiteGenerator, z: torch.Tensor) -> list[torch.Tensor]:
    """The w each modulated conv's affine received in ``g(z)``, in synthesis order (toRGBs included)."""
    seen = []
    hooks = [m.affine.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
             for m in g.modules() if isinstance(m, ModulatedConv2d)]
    g(z)
    for hook in hooks:
        hook.remove()
    return seen


def crossover(g: StyleGANLiteGenerator, z: torch.Tensor) -> int:
    """From the layers' inputs: the first layer not seeing z's own w (num_ws if none), after checking that the
    layers before it see w1 = map(z) and every layer from it on one same w2 != w1."""
    w1 = g.map_to_w(z).detach()
    seen = affine_inputs(g, z)
    # Per block: its convs, then its toRGB, which shares its w index with the next block's first conv.
    index, per_layer = 0, {}
    for block in g.blocks:
        for _ in block.layers:
            per_layer.setdefault(index, []).append(seen.pop(0))
            index += 1
        per_layer.setdefault(index, []).append(seen.pop(0))
    assert sorted(per_layer) == list(range(g.num_ws))
    first_mixed = next((i for i in range(g.num_ws) if not torch.equal(per_layer[i][0], w1)), g.num_ws)
    for i in range(g.num_ws):
        for w in per_layer[i]:
            if i < first_mixed:
                assert torch.equal(w, w1)
            else:
                assert torch.equal(w, per_layer[first_mixed][0]) and not torch.allclose(w, w1)
    return first_mixed


def test_mixing_layers_after_the_crossover_see_the_second_w():
    g = tiny(style_mixing_prob=1.0).train()
    z = torch.randn(2, 4)
    cuts = [crossover(g, z) for _ in range(60)]
    # Always mixed, at a crossover uniform in [1, num_ws): every one of them drawn in 60 tries.
    assert set(cuts) == set(range(1, g.num_ws))
    g.eval()  # sampling never mixes
    assert crossover(g, z) == g.num_ws


def test_mixing_probability_is_the_share_of_mixed_batches():
    g = tiny(style_mixing_prob=0.9).train()
    z = torch.randn(2, 4)
    mixed = sum(crossover(g, z) < g.num_ws for _ in range(200))
    assert 165 <= mixed <= 195  # binomial(200, 0.9): mean 180, sd 4.2
    assert all(crossover(tiny(style_mixing_prob=0.0).train(), z) == g.num_ws for _ in range(10))


def test_w_plus_with_one_w_repeated_is_w():
    g = tiny().eval()
    w = torch.randn(3, 4)
    torch.testing.assert_close(g.synthesis(w), g.synthesis(w[:, None].repeat(1, g.num_ws, 1)), rtol=0, atol=0)
    with pytest.raises(ValueError, match="layers of style"):
        g.synthesis(torch.randn(3, g.num_ws + 1, 4))


def test_noise_inputs_switch_off_and_their_fixed_maps_follow_the_seed():
    z = torch.randn(2, 4)
    quiet = tiny(noise=False, style_mixing_prob=0.0).train()
    assert quiet.noise_inputs == [] and not any("noise" in k for k in quiet.state_dict())
    torch.testing.assert_close(quiet(z), quiet(z), rtol=0, atol=0)  # training draws nothing either
    a, b, c = tiny(noise_seed=3), tiny(noise_seed=3), tiny(noise_seed=4)
    assert len(a.noise_inputs) == 2 * len(a.blocks) - 1  # one per 3x3 conv
    assert all(torch.equal(x.fixed, y.fixed) for x, y in zip(a.noise_inputs, b.noise_inputs))
    assert not any(torch.equal(x.fixed, y.fixed) for x, y in zip(a.noise_inputs, c.noise_inputs))
    # The seed decides only the noise maps: every other weight is the same whatever it is.
    assert all(torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items() if not k.endswith("fixed"))


def test_given_noise_maps_replace_the_fixed_ones():
    g = tiny().eval()
    w = torch.randn(2, 4)
    fixed = [n.fixed.clone() for n in g.noise_inputs]
    torch.testing.assert_close(g.synthesis(w, noise=fixed), g.synthesis(w), rtol=0, atol=0)
    other = [torch.randn_like(m) for m in fixed]
    assert not torch.allclose(g.synthesis(w, noise=other), g.synthesis(w))
    with pytest.raises(ValueError, match="noise inputs"):
        g.synthesis(w, noise=fixed[:-1])


def test_training_applies_path_length_every_fourth_g_step_and_checkpoints_its_mean(cfg_factory, tmp_path, monkeypatch):
    cfg = cfg_factory("model=stylegan_lite", "model.generator.width=8", "model.discriminator.width=8",
                      "model.generator.latent_dim=8", "trainer.limit_train_batches=5", "trainer.max_epochs=1",
                      "trainer.log_every_n_steps=1")
    logged = []
    original = PathLengthPenalty.forward

    def recording(self, generator, batch_size, labels, grad_scale=1.0):
        logged.append(batch_size)
        return original(self, generator, batch_size, labels, grad_scale)

    monkeypatch.setattr(PathLengthPenalty, "forward", recording)
    run = train(cfg)
    module = run.module
    assert module.g_step == 5 and len(logged) == 2  # G steps 0 and 4
    assert module.g_regularizers["pl"].pl_mean.item() > 0
    checkpoint = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    pl_mean = checkpoint["state_dict"]["g_regularizers.pl.pl_mean"]
    assert pl_mean.item() == pytest.approx(module.g_regularizers["pl"].pl_mean.item())
    rebuilt, _ = module_from_checkpoint(checkpoint)  # resumes with the running mean
    assert rebuilt.g_regularizers["pl"].pl_mean.item() == pytest.approx(pl_mean.item())
