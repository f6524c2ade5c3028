"""Short digits runs of the other GANs must learn, judged as the default run in test_learning.py is: the stricter
of two outside judges reads more of their samples as digits than of an untrained G's, every class appears, and a
conditional model draws the class it is asked for.

The runs are shorter than each model's digits setting (conf/model_data/<model>_digits.yaml: fewer epochs, smaller
widths for the ResNets), so the bounds are lower than docs/models.md's figures; each sits below what two seeds
measured (``MEASURED``), so that a real regression fails it.
"""

import pytest
from hydra_compose import BeforeFit
from test_learning import class_agreement, verdict

from parti_exp.train import train

RUNS = {
    "dcgan": ["trainer.max_epochs=30"],
    "sngan": ["trainer.max_epochs=16", "model.generator.width=16", "model.discriminator.width=16"],
    "cgan_pd": ["trainer.max_epochs=25"],
    "stylegan_lite": ["trainer.max_epochs=25", "model.generator.width=16", "model.discriminator.width=16"],
}
# (stricter judge's confident share, smallest class) of seeds 42 and 1, measured with these runs on 300 samples
MEASURED = {
    "dcgan": ((0.383, 0.043), (0.400, 0.020)),
    "sngan": ((0.173, 0.040), (0.193, 0.017)),
    "cgan_pd": ((0.463, 0.043), (0.440, 0.017)),  # read as the class asked for: 0.253 and 0.237
    "stylegan_lite": ((0.327, 0.013), (0.347, 0.003)),
}
# about three quarters of the lower seed's share; every class in at least 3 of the 300 samples, except
# stylegan_lite's short run, which left one class at 1 sample on seed 1 (None: not asserted)
BOUNDS = {"dcgan": (0.30, 0.01), "sngan": (0.13, 0.01), "cgan_pd": (0.35, 0.01), "stylegan_lite": (0.25, None)}
CLASS_AGREEMENT = {"cgan_pd": 0.18}


@pytest.mark.slow
@pytest.mark.parametrize("model", RUNS)
def test_short_run_learns_digits_the_stricter_judge_reads(cfg_factory, model):
    cfg = cfg_factory(
        f"model={model}", "trainer.accelerator=cpu", "metrics=none", "~callbacks", "~logger", *RUNS[model], fast=False
    )
    before = {}
    module = train(cfg, [BeforeFit(lambda untrained: before.update(verdict=verdict(untrained)))]).module
    after = verdict(module)
    confident, smallest = BOUNDS[model]

    assert before["verdict"].confident_share < 0.1, before["verdict"]
    assert after.confident_share >= confident, after
    assert smallest is None or after.min_class_share >= smallest, after
    if module.num_classes:
        assert class_agreement(module) >= CLASS_AGREEMENT[model], "samples ignore the requested class"
