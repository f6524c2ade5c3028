"""The config tree: every model x loss composes and builds, overrides users type work, and the CLI
shows the composed config."""

import re
import subprocess
import sys

import pytest
from hydra.utils import instantiate
from hydra_compose import REPO_ROOT, compose_train, subprocess_env

from parti_exp import CONF_DIR
from parti_exp.builders import build_module
from parti_exp.models.gan.module import AdversarialModule

# Every adversarial model; model=parti and model=muse are Transformers over a trained tokenizer, model=contrastive a
# scorer and model=vae a likelihood model, with no loss group (tests/models/text_to_image/ and tests/models/vae/ build
# them). `_gan`, `_text_tokenizer` and `_text_to_image` are bases models inherit, not models.
NOT_ADVERSARIAL = ("parti", "muse", "contrastive", "vae")
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("[!_]*.yaml") if p.stem not in NOT_ADVERSARIAL)
LOSSES = sorted(p.stem for p in (CONF_DIR / "loss").glob("*.yaml"))
LOSS_CLASS = {
    "bce": "MinimaxLoss",
    "ns": "NonSaturatingLoss",
    "wgan_gp": "WassersteinLoss",
    "hinge": "HingeLoss",
    "lsgan": "LeastSquaresLoss",
}


def test_the_expected_groups_exist():
    assert {"dcgan", "wgan_gp"} <= set(MODELS)
    assert set(LOSS_CLASS) <= set(LOSSES)
    for group, options in {
        "trainer": {"default", "cpu", "gpu", "ddp", "ddp_sim", "multinode"},
        "precision": {"32-true", "bf16-mixed", "16-mixed"},
        "logger": {"csv", "tensorboard"},
        "metrics": {"none"},
        "experiment": {"quickstart"},
    }.items():
        assert options <= {p.stem for p in (CONF_DIR / group).glob("*.yaml")}, group


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("loss", LOSSES)
def test_every_model_and_loss_composes_and_builds(cfg_factory, model, loss):
    cfg = cfg_factory(f"model={model}", f"loss={loss}")
    module = build_module(cfg)
    assert isinstance(module, AdversarialModule)
    assert type(module.loss).__name__ == LOSS_CLASS.get(loss, type(module.loss).__name__)
    assert ("gp" in module.regularizers) == (loss == "wgan_gp")


@pytest.mark.parametrize("model,loss", [("dcgan", "NonSaturatingLoss"), ("wgan_gp", "WassersteinLoss")])
def test_model_file_selects_its_own_default_loss(cfg_factory, model, loss):
    assert type(build_module(cfg_factory(f"model={model}")).loss).__name__ == loss


def test_wgan_gp_follows_the_paper(cfg_factory):
    cfg = cfg_factory("model=wgan_gp", fast=False)
    module = build_module(cfg)
    assert module.n_critic == 5
    assert module.regularizers["gp"].weight == 10.0
    assert cfg.model.discriminator.norm == "none"
    g_opt, d_opt = module.configure_optimizers()
    for opt in (g_opt, d_opt):
        assert opt.defaults["lr"] == 1e-4 and tuple(opt.defaults["betas"]) == (0.0, 0.9)


def test_image_size_and_channels_flow_from_the_data_config(cfg_factory):
    cfg = cfg_factory("data.img_size=64")
    module = build_module(cfg)
    import torch

    assert module.generator(torch.randn(2, module.latent_dim)).shape == (2, 1, 64, 64)
    datamodule = instantiate(cfg.data)
    assert (datamodule.img_size, datamodule.channels) == (64, 1)


def test_user_overrides_reach_the_objects(cfg_factory, tmp_path):
    cfg = cfg_factory("trainer.max_epochs=3", "data.batch_size=7", "seed=123", f"paths.data_dir={tmp_path}/d")
    assert cfg.trainer.max_epochs == 3 and cfg.seed == 123
    assert instantiate(cfg.data).batch_size == 7
    assert cfg.paths.data_dir == f"{tmp_path}/d"


def test_quickstart_experiment_pins_cpu_and_small_nets(cfg_factory):
    cfg = cfg_factory("experiment=quickstart", fast=False)
    assert cfg.trainer.accelerator == "cpu"
    assert cfg.model.generator.width == 32
    assert cfg.data._target_.endswith("DigitsDataModule")


@pytest.mark.parametrize(
    ("model", "n_critic", "epochs"),
    [("cgan_pd", 1, 40), ("dcgan", 1, 60), ("wgan_gp", 5, 150), ("sngan", 1, 40), ("stylegan_lite", 1, 30)],
)
def test_naming_a_model_on_the_digits_gives_its_digits_setting(cfg_factory, model, n_critic, epochs):
    """conf/model_data/<model>_digits.yaml, with or without experiment=quickstart (which only pins the CPU)."""
    for preset in ([], ["experiment=quickstart"]):
        cfg = cfg_factory(*preset, f"model={model}", fast=False)
        assert (cfg.model.n_critic, cfg.trainer.max_epochs, cfg.model.generator.width) == (n_critic, epochs, 32)
        assert cfg.model.ema is not None  # every GAN samples from averaged weights on the digits
    assert cfg.trainer.accelerator == "cpu"


def test_the_default_run_is_cgan_pd_with_its_digits_setting(cfg_factory):
    cfg = cfg_factory(fast=False)
    assert cfg.model.generator._target_.endswith("ConditionalResNetGenerator")
    assert cfg.model.discriminator.spectral_norm is False
    assert cfg.loss.adversarial._target_.endswith("HingeLoss")
    assert (cfg.loss.regularizers.r1.gamma, cfg.loss.regularizers.r1.every) == (1.0, 16)
    assert cfg.model.ema.half_life_images == 10000 and cfg.trainer.max_epochs == 40


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "parti_exp.train", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )


def test_cli_cfg_job_prints_the_composed_config():
    out = _cli("model=wgan_gp", "loss=hinge", "--cfg", "job")
    assert out.returncode == 0, out.stderr
    assert "parti_exp.models.gan.losses.HingeLoss" in out.stdout
    assert "n_critic: 5" in out.stdout


def test_cli_help_lists_the_config_groups():
    out = _cli("--help")
    assert out.returncode == 0, out.stderr
    for group in ("model:", "loss:", "data:", "precision:"):
        assert group in out.stdout
    assert "wgan_gp" in out.stdout


def test_unknown_model_name_lists_the_choices():
    out = _cli("model=nosuchgan")
    assert out.returncode != 0
    assert "nosuchgan" in out.stderr and "dcgan" in out.stderr


@pytest.mark.parametrize(
    "trainer,backend,devices,nodes,sync_bn",
    # None: the accelerator's backend (test below)
    [("ddp", None, -1, 1, True), ("multinode", None, -1, 2, True), ("ddp_sim", "gloo", 2, 1, False)],
)
def test_distributed_trainer_configs_use_the_per_net_strategy(cfg_factory, trainer, backend, devices, nodes, sync_bn):
    from parti_exp.runtime.distributed import PerNetDDPStrategy

    cfg = cfg_factory(f"trainer={trainer}", fast=False)
    strategy = instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, PerNetDDPStrategy)
    assert strategy.process_group_backend == backend
    assert strategy._ddp_kwargs.get("find_unused_parameters") is False
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.sync_batchnorm) == (devices, nodes, sync_bn)


@pytest.mark.parametrize("trainer", ["ddp", "multinode"])
def test_distributed_trainers_on_the_cpu_use_gloo_and_per_process_batch_norm(cfg_factory, trainer, caplog):
    from parti_exp.builders import build_trainer

    cfg = cfg_factory(f"trainer={trainer}", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.num_nodes=1",
                      fast=False)
    with caplog.at_level("INFO"):
        built = build_trainer(cfg, [], [])
    assert built.strategy._get_process_group_backend() == "gloo"
    assert built.strategy._layer_sync is None  # no SyncBatchNorm conversion
    assert "trainer.sync_batchnorm=true is for GPUs" in caplog.text


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message shown without a GPU")
def test_gpu_trainer_without_gpu_says_what_to_use_instead(cfg_factory):
    from parti_exp.builders import build_trainer

    with pytest.raises(RuntimeError, match="no CUDA GPU.*trainer=ddp_sim"):
        build_trainer(cfg_factory("trainer=ddp", fast=False), [], [])


@pytest.mark.parametrize(
    "data,reader",
    [
        ("digits", "caption_accuracy"),
        ("mnist", "caption_accuracy"),
        ("cifar10", "caption_accuracy"),
        ("digit_scenes", "scene_accuracy"),
        ("celeba", None),  # captions of several attributes name no one class
        ("captions", None),
        ("coco", None),
    ],
)
@pytest.mark.parametrize("model", ["parti", "muse"])
def test_a_text_to_image_run_reads_its_samples_back_where_its_data_allows(tmp_path, model, data, reader):
    # Chosen by composition (conf/model_data/<model>_<data>.yaml), not by the callbacks looking at the data.
    cfg = compose_train(tmp_path, f"model={model}", f"data={data}", "model.tokenizer_ckpt=unused.ckpt", fast=False)
    readers = {"caption_accuracy", "scene_accuracy"} & set(cfg.callbacks)
    assert readers == ({reader} if reader else set())
    assert {"model_checkpoint", "prompt_grid", "text_image_metrics"} <= set(cfg.callbacks)
    assert cfg.callbacks.sample_grid is None


def test_a_torchrun_job_s_workers_and_restarts_share_one_run_directory(monkeypatch):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from parti_exp import CONF_DIR

    def run_dir() -> str:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            cfg = compose(config_name="train", overrides=["paths.root_dir=/x"], return_hydra_config=True)
        return OmegaConf.select(cfg, "hydra.run.dir")

    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert re.search(r"/train/runs/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d$", run_dir())  # a time stamp per run
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "5f1c2d")  # torchrun's rendezvous id: the same for all workers
    assert run_dir().endswith("/train/runs/5f1c2d")
