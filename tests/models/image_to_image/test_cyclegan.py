"""CycleGAN (`model=cyclegan`) on the digit styles: both translators and both discriminators in the adversarial
loop's seams, the cycle and identity terms, the pool of earlier fakes D sees, and its validation metrics."""

import pytest
import torch
import torch.nn.functional as F
from hydra_compose import compose_train

from parti_exp.builders import build_module
from parti_exp.errors import ConfigError
from parti_exp.models.image_to_image.image_pool import ImagePool
from parti_exp.nets.cyclegan import DomainDiscriminators
from parti_exp.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["model=cyclegan", "data=digit_styles", "trainer.log_every_n_steps=1"]


def test_the_domain_discriminators_judge_b_first_then_a():
    d_a, d_b = torch.nn.Conv2d(1, 1, 1, bias=False), torch.nn.Conv2d(1, 1, 1, bias=False)
    torch.nn.init.constant_(d_a.weight, 1.0)
    torch.nn.init.constant_(d_b.weight, -1.0)
    scores = DomainDiscriminators(d_a, d_b)(torch.ones(4, 1, 2, 2))
    assert scores[:2].eq(-1).all() and scores[2:].eq(1).all()


def test_g_loss_terms_are_the_cycle_and_identity_l1s(tmp_path):
    module = build_module(compose_train(tmp_path, *TINY, "model.cycle_weight=3", "model.identity_weight=0.5"))
    a, b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    fakes, terms = module.make_fakes(torch.cat([b, a]), None)
    g_ab, g_ba = module.generator.a_to_b, module.generator.b_to_a
    torch.testing.assert_close(fakes, torch.cat([g_ab(a), g_ba(b)]))
    cycle = F.l1_loss(g_ba(g_ab(a)), a) + F.l1_loss(g_ab(g_ba(b)), b)
    torch.testing.assert_close(terms["cycle"], 3 * cycle)
    torch.testing.assert_close(terms["identity"], 1.5 * (F.l1_loss(g_ab(b), b) + F.l1_loss(g_ba(a), a)))
    assert module.adversarial_weight() == 2.0  # the paper sums the two directions' adversarial terms
    no_identity = build_module(compose_train(tmp_path, *TINY, "model.identity_weight=0"))
    assert set(no_identity.make_fakes(torch.cat([b, a]), None)[1]) == {"cycle"}


def test_the_pool_passes_fakes_until_full_then_swaps_about_half_for_older_ones():
    pool = ImagePool(size=8)
    first = torch.arange(8.0).view(8, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and pool.count == 8
    torch.manual_seed(0)
    swapped = 0
    for step in range(1, 41):
        fakes = torch.full((8, 1, 1, 1), 100.0 * step)
        seen = pool.query(fakes)
        from_pool = seen != fakes
        swapped += int(from_pool.sum())
        assert (seen[from_pool] < 100.0 * step).all()  # what comes from the pool is older
    assert 0.4 < swapped / (40 * 8) < 0.6
    assert torch.equal(ImagePool(size=0).query(first), first)
    restored = ImagePool(size=8)
    restored.load_state_dict(pool.state_dict())
    assert torch.equal(restored.images, pool.images) and restored.count == 8


def test_cyclegan_trains_both_ways_and_validates_against_the_known_mapping(tmp_path):
    run = train(compose_train(tmp_path, *TINY, "trainer.limit_train_batches=3", "model.pool_size=4"))
    module, logged = run.module, run.trainer.callback_metrics
    assert (module.g_step, module.d_step) == (3, 3)
    for key in ("train/cycle", "train/identity", "train/g_adv", "val/cycle_psnr_a", "val/cycle_psnr_b",
                "val/psnr", "val/ssim", "val/d_real"):
        assert key in logged and torch.isfinite(logged[key]), key
    # the floor: each held-out digit against its own dilation, 12.85 dB on the 180 val digits
    assert float(logged["val/psnr_baseline"]) == pytest.approx(12.847, abs=0.01)
    assert module.pools["a"].count == 4 and module.pools["b"].count == 4
    assert (tmp_path / "run" / "translations" / "epoch_0000.png").is_file()


def test_cyclegan_needs_two_sets_of_images(tmp_path):
    with pytest.raises(ConfigError, match="model=cyclegan learns from two sets of images"):
        train(compose_train(tmp_path, "model=cyclegan", "trainer.limit_train_batches=1"))
