"""`python -m parti_exp.export` and the model folders it writes: what they hold, that every command samples from one
exactly as from its checkpoint (byte-identical PNGs) without unpickling anything, and the errors for a bad folder."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from checkpoint_helpers import OLD_PARTI, OLD_STYLEGAN, OLD_TOKENIZER, OLD_VAE
from hydra_compose import compose_export, compose_sample, compose_train
from hydra_compose import run_entry_point as run
from safetensors.torch import load_file, save_file

from parti_exp.errors import BadCheckpointError, ConfigError, MissingInputError, UntrustedCheckpointError
from parti_exp.inference.export import export_model
from parti_exp.inference.hub_upload import push_folder
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint, resolve_ckpt_path
from parti_exp.sample import sample
from parti_exp.train import train


def pngs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def refuse_unpickling(monkeypatch) -> None:
    def refused(*args, **kwargs):
        raise AssertionError("torch.load was called while reading a model folder")

    monkeypatch.setattr(torch, "load", refused)


def export(tmp_path: Path, ckpt: Path, *options: str) -> Path:
    cfg = compose_export(tmp_path, f"ckpt_path={ckpt}", f"out_dir={tmp_path / 'folder'}", *options)
    return export_model(cfg, torch.device("cpu"))


SAMPLES = {
    "stylegan_lite": (OLD_STYLEGAN, ["n=6", "truncation=0.7"]),
    "vae": (OLD_VAE, ["n=6"]),
    "parti_word_tokenizer": (OLD_PARTI, ['prompts=["a handwritten seven","the digit 2"]', "n=3"]),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_a_folder_samples_the_same_pngs_as_its_checkpoint_without_unpickling(tmp_path, monkeypatch, one_thread,
                                                                              name):
    ckpt, options = SAMPLES[name]
    folder = export(tmp_path, ckpt, *options)
    sample(compose_sample(tmp_path, f"ckpt_path={ckpt}", "device=cpu", *options), tmp_path / "from_ckpt")
    refuse_unpickling(monkeypatch)
    sample(compose_sample(tmp_path, f"ckpt_path={folder}", "device=cpu", *options), tmp_path / "from_folder")
    from_ckpt, from_folder = pngs(tmp_path / "from_ckpt"), pngs(tmp_path / "from_folder")
    assert len(from_ckpt) >= 7 and from_ckpt == from_folder
    # samples.png is the grid the card's command draws again from the folder.
    assert (folder / "samples.png").read_bytes() == from_folder["grid.png"]
    manifest = json.loads((tmp_path / "from_folder" / "manifest.json").read_text())
    assert manifest["checkpoint"] == str(folder)


def test_a_gan_folder_holds_the_moving_average_alone_and_a_plain_config(tmp_path, one_thread):
    folder = export(tmp_path, OLD_STYLEGAN, "n=4")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.yaml", "model.safetensors", "samples.png"]
    weights = load_file(folder / "model.safetensors")
    stored = torch.load(OLD_STYLEGAN, weights_only=True)["state_dict"]
    ema = {k: v for k, v in stored.items() if k.startswith("generator_ema.")}
    assert weights.keys() == ema.keys()  # no critic, no last iterate
    assert all(torch.equal(weights[k], ema[k]) for k in ema)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert sorted(config) == ["data", "model"]
    assert config["model"]["_target_"] == "parti_exp.models.gan.module.GANModule"  # the old path, mapped
    card = (folder / "README.md").read_text()
    assert "family: `gan`" in card and "DigitsDataModule`, 1,617 training images" in card
    assert f"python -m parti_exp.sample ckpt_path={folder} n=4 seed=0" in card
    assert "git commit not recorded" in card  # the fixture predates the record
    module, _ = module_from_checkpoint(read_checkpoint(OLD_STYLEGAN))
    assert f"{sum(p.numel() for p in module.generator_ema.parameters()):,}" in card


SHORT_RUN = ["metrics=none", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
             "trainer.enable_progress_bar=false"]


def trained_run(tmp: Path, *overrides: str) -> Path:
    """The run directory of a two-batch run, trained on one thread (a module fixture's: no test's one_thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(compose_train(tmp, *SHORT_RUN, *overrides, fast=False))
    finally:
        torch.set_num_threads(threads)
    return tmp / "run"


@pytest.fixture(scope="module")
def parti_run(tmp_path_factory):
    """A fresh stage-2 run (subword tokenizer, the run's git commit and wall time recorded, its CSV log)."""
    return trained_run(tmp_path_factory.mktemp("parti"), "model=parti", "data.img_size=16",
                       f"model.tokenizer_ckpt={OLD_TOKENIZER}", "logger=csv", "model.transformer.dim=32",
                       "model.transformer.heads=2", "model.transformer.encoder_depth=1",
                       "model.transformer.decoder_depth=1", "callbacks.caption_accuracy=null",
                       "callbacks.prompt_grid=null")


def test_a_text_to_image_folder_keeps_its_tokenizers_and_card(tmp_path, monkeypatch, one_thread, parti_run):
    options = ['prompts=["a handwritten seven","a zebra in Zürich"]', "n=2"]
    folder = export(tmp_path, parti_run, *options)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["README.md", "config.yaml", "model.safetensors", "samples.png", "tokenizer.json",
                     "tokenizer/config.yaml", "tokenizer/model.safetensors"]
    stored = read_checkpoint(parti_run)
    assert (folder / "tokenizer.json").read_text() == stored["text_tokenizer"]["json"]
    assert all(k.startswith("transformer.") for k in load_file(folder / "model.safetensors"))
    assert all(k.startswith("generator.") for k in load_file(folder / "tokenizer" / "model.safetensors"))
    card = (folder / "README.md").read_text()
    assert f"git commit `{stored['parti_exp_run']['git_commit']}`" in card
    assert "wall time: 0 min" in card and "| `val/ce` |" in card
    sample(compose_sample(tmp_path, f"ckpt_path={parti_run}", "device=cpu", *options), tmp_path / "from_ckpt")
    # The image tokenizer's own checkpoint is not needed: the folder holds it.
    refuse_unpickling(monkeypatch)
    sample(compose_sample(tmp_path, f"ckpt_path={folder}", "device=cpu", *options), tmp_path / "from_folder")
    assert pngs(tmp_path / "from_ckpt") == pngs(tmp_path / "from_folder")
    (folder / "tokenizer.json").write_text('{"model": "cut short')
    with pytest.raises(BadCheckpointError, match="tokenizer.json is not a readable tokenizer file"):
        read_checkpoint(folder)


def test_the_tokenizer_sub_folder_is_an_image_tokenizer_for_a_new_stage_2(tmp_path, one_thread):
    folder = export(tmp_path, OLD_PARTI, 'prompts=["a handwritten seven"]', "n=1")
    with pytest.raises(BadCheckpointError, match=r"tokenizer: its config.yaml builds a dict, not a model .* "
                                                 r"is read where that net is \(model.tokenizer_ckpt=\)"):
        module_from_checkpoint(read_checkpoint(folder / "tokenizer"))
    (folder / "word_tokenizer.json").write_text("{not json")
    with pytest.raises(BadCheckpointError, match="word_tokenizer.json is not a readable tokenizer file"):
        read_checkpoint(folder)
    cfg = compose_train(tmp_path, "model=parti", "data.img_size=16", f"model.tokenizer_ckpt={folder / 'tokenizer'}",
                        fast=False)
    from parti_exp.builders import build_module

    module = build_module(cfg)
    expected = load_file(folder / "tokenizer" / "model.safetensors")
    assert all(torch.equal(module.image_tokenizer.state_dict()[k[len("generator."):]], v) for k, v in expected.items())


def broken_copy(tmp_path: Path, folder: Path) -> Path:
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    return broken


def test_a_bad_folder_is_refused_with_the_file_and_the_remedy(tmp_path, one_thread):
    folder = export(tmp_path, OLD_VAE, "n=1")
    broken = broken_copy(tmp_path, folder)
    (broken / "model.safetensors").unlink()
    with pytest.raises(MissingInputError, match="a model folder without model.safetensors: export it again"):
        read_checkpoint(broken)
    shutil.rmtree(broken)

    broken = broken_copy(tmp_path, folder)
    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = torch.zeros(3, 5)
    save_file(weights, broken / "model.safetensors")
    with pytest.raises(BadCheckpointError, match=rf"tensors of the wrong shape: {name} \(3, 5\)"):
        module_from_checkpoint(read_checkpoint(broken))
    del weights[name]
    save_file(weights, broken / "model.safetensors")
    with pytest.raises(BadCheckpointError, match=rf"missing 1 tensors \({name}\)"):
        module_from_checkpoint(read_checkpoint(broken))
    shutil.rmtree(broken)

    broken = broken_copy(tmp_path, folder)
    config = yaml.safe_load((broken / "config.yaml").read_text())
    config["model"]["net"]["_target_"] = "os.system"
    (broken / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UntrustedCheckpointError, match=r"model.net._target_='os.system'"):
        read_checkpoint(broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BadCheckpointError, match="model.safetensors is not a readable safetensors file"):
        read_checkpoint(broken)


def test_export_refuses_to_overwrite_and_training_refuses_to_resume_from_a_folder(tmp_path, one_thread):
    folder = export(tmp_path, OLD_VAE, "n=1")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        export(tmp_path, OLD_VAE, "n=1")
    with pytest.raises(BadCheckpointError, match="is a model folder .* resume from the run's .ckpt instead"):
        resolve_ckpt_path(str(folder), tmp_path)
    # A failed export leaves nothing behind.
    with pytest.raises(ConfigError, match="prompts="):
        export_model(compose_export(tmp_path, f"ckpt_path={OLD_PARTI}", f"out_dir={tmp_path / 'other'}"), "cpu")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".other", "other"))) == []


def test_without_a_token_push_to_says_how_to_upload_later(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)  # whatever token this machine may hold
    message = push_folder(tmp_path, "someone/digits-gan")
    assert message.startswith("not uploaded (no Hugging Face token")
    assert f"hf upload someone/digits-gan {tmp_path} ." in message


def test_export_command_line_writes_the_folder(tmp_path):
    result = run("parti_exp.export", f"ckpt_path={OLD_VAE}", f"out_dir={tmp_path / 'vae'}", "n=4", "device=cpu",
                 f"paths.root_dir={tmp_path}", "push_to=someone/vae")
    assert f"wrote the model folder {tmp_path / 'vae'}" in result.stdout
    assert "not uploaded" in result.stdout and (tmp_path / "vae" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def scorer_run(tmp_path_factory):
    """A tiny contrastive scorer on the digits (16 px, as the old text-to-image fixture)."""
    return trained_run(tmp_path_factory.mktemp("scorer"), "experiment=contrastive_digits",
                       "model.image_encoder.width=8", "model.image_encoder.dim=16", "model.text_encoder.dim=16",
                       "model.embed_dim=16")


def test_a_scorer_exported_beside_the_model_reranks_as_its_checkpoint(tmp_path, monkeypatch, one_thread, scorer_run):
    options = ['prompts=["a handwritten seven"]', "n=2", "n_candidates=3"]
    folder = export(tmp_path, OLD_PARTI, *options, f"scorer_ckpt={scorer_run}")
    assert sorted(p.name for p in (folder / "scorer").iterdir()) == ["config.yaml", "model.safetensors",
                                                                      "tokenizer.json"]
    assert f"scorer_ckpt={folder / 'scorer'}" in (folder / "README.md").read_text()
    sample(compose_sample(tmp_path, f"ckpt_path={OLD_PARTI}", "device=cpu", *options, f"scorer_ckpt={scorer_run}"),
           tmp_path / "from_ckpt")
    refuse_unpickling(monkeypatch)
    sample(compose_sample(tmp_path, f"ckpt_path={folder}", "device=cpu", *options, f"scorer_ckpt={folder / 'scorer'}"),
           tmp_path / "from_folder")
    assert pngs(tmp_path / "from_ckpt") == pngs(tmp_path / "from_folder")
    assert (folder / "samples.png").read_bytes() == (tmp_path / "from_folder" / "grid.png").read_bytes()
