"""The masked-token model as a user trains it (`model=muse model.tokenizer_ckpt=...`, over a `model=vqgan` run): its
loss, validation, `sample` with prompts, `edit`, and an exact resume."""

import os
import signal

import pytest
import torch
from checkpoint_helpers import OLD_TOKENIZER
from hydra_compose import compose_edit, compose_sample, compose_train
from PIL import Image

from parti_exp.builders import build_datamodule, build_module
from parti_exp.edit import edit
from parti_exp.errors import ConfigError
from parti_exp.inference.edit_mask import requested_mask
from parti_exp.inference.editing import edit_image
from parti_exp.models.text_to_image.muse import MaskedTextToImageModule
from parti_exp.models.text_to_image.token_model import ImageTokenModule
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint
from parti_exp.sample import sample
from parti_exp.train import train

# The tests' tiny tokenizer (16 px, 4 x 4 tokens of 16 codes) and a tiny Transformer.
QUICK = [
    f"model.tokenizer_ckpt={OLD_TOKENIZER}",
    "metrics=none",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.limit_val_batches=1",
    "model.transformer.dim=32",
    "model.transformer.encoder_depth=1",
    "model.transformer.heads=2",
    "callbacks.prompt_grid.per_prompt=2",
    "callbacks.caption_accuracy=null",
]
MUSE = ["experiment=muse_digits", *QUICK, "model.transformer.depth=1", "model.sampling.steps=3"]
# Parti's decoder over the same tokenizer, as small.
PARTI = ["experiment=parti_digits", *QUICK, "model.transformer.decoder_depth=1"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("muse")
    run = train(compose_train(tmp, *MUSE, "trainer.max_epochs=1", "trainer.limit_train_batches=2", fast=False))
    assert 0 < float(run.metrics["train/masked_ce"]) and 0 < float(run.metrics["val/masked_ce"])
    assert (tmp / "run" / "samples" / "epoch_0000.png").is_file()
    # The best checkpoint is named after this decoder's validation loss, val/masked_ce (parti's: best_val_ce.ckpt).
    assert sorted(p.name for p in (tmp / "run" / "checkpoints").glob("best_val_*")) == ["best_val_masked_ce.ckpt"]
    return tmp / "run" / "checkpoints" / "last.ckpt"


def test_the_loss_is_the_cross_entropy_of_the_masked_tokens_only(tmp_path, monkeypatch):
    module = build_module(compose_train(tmp_path, *MUSE, fast=False))
    mask_id = module.transformer.mask_id
    tokens = torch.tensor([[1, 2, 0, 3]])
    masked = torch.tensor([[False, True, False, True]])
    monkeypatch.setattr("parti_exp.models.text_to_image.muse.training_mask", lambda batch, n: masked)
    # Position 1 (code 2): logits (0, 0, ln 2, 0, ...) over 16 codes -> p = 2 / 17; position 3 (code 3): uniform, 1/16.
    # The visible positions get logits that would cost 50 nats each if they were scored.
    logits = torch.zeros(1, 4, module.transformer.codebook_size)
    logits[0, 1, 2] = torch.tensor(2.0).log()
    logits[0, 0, 1] = logits[0, 2, 0] = -50.0
    seen = []
    monkeypatch.setattr(module.transformer, "forward", lambda ids, mask, inputs: seen.append(inputs) or logits)
    loss = module.token_loss(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool), tokens)
    assert seen[0].tolist() == [[1, mask_id, 0, mask_id]], "the model sees [MASK] at the masked positions"
    expected = (-torch.tensor(2 / 17).log() + torch.tensor(16.0).log()) / 2
    torch.testing.assert_close(loss, expected)


def test_validation_draws_fixed_captions_and_masks_and_leaves_the_training_stream_alone(tmp_path, checkpoint):
    module, cfg = module_from_checkpoint(read_checkpoint(checkpoint))
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    module.use_captions(datamodule.caption_source())
    logged = []
    module.log = lambda key, value, **kw: logged.append(float(value))
    batch = (torch.rand(4, 1, 16, 16) * 2 - 1, torch.arange(4))
    state = torch.get_rng_state()
    for batch_idx in (0, 0, 1):
        module.validation_step(batch, batch_idx)
    assert torch.equal(torch.get_rng_state(), state)
    assert logged[0] == logged[1] != logged[2]


def test_sample_writes_a_folder_per_prompt_with_its_own_sampling_settings(tmp_path, checkpoint):
    module, _ = module_from_checkpoint(read_checkpoint(checkpoint))
    assert isinstance(module, MaskedTextToImageModule) and module.sampling.steps == 3
    cfg = compose_sample(tmp_path, f"ckpt_path={checkpoint}", 'prompts=["a handwritten seven","the digit 2"]', "n=3",
                         "n_candidates=2", "sampling.steps=2", "sampling.guidance_schedule=linear")
    paths = sample(cfg, tmp_path / "out")
    assert sorted(p.parent.name for p in paths) == ["a_handwritten_seven"] * 3 + ["the_digit_2"] * 3
    assert Image.open(paths[0]).size == (16, 16)
    with pytest.raises(ConfigError, match="sampling.use_cache is not a sampling setting of this "
                                          "MaskedTextToImageModule checkpoint; its settings are steps, temperature"):
        sample(compose_sample(tmp_path, f"ckpt_path={checkpoint}", "prompts=[a one]", "sampling.use_cache=false"),
               tmp_path / "bad")


def test_edit_keeps_the_unmasked_tokens_and_pixels(tmp_path, checkpoint, monkeypatch):
    module, _ = module_from_checkpoint(read_checkpoint(checkpoint))
    image = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    drawn = []
    sample_tokens = module.sample_tokens
    monkeypatch.setattr(module, "sample_tokens", lambda *args: drawn.append(sample_tokens(*args)) or drawn[-1])
    mask = requested_mask("box=[4,4,12,12]", 16, 16)  # the centre 2 x 2 of the 4 x 4 token cells
    edits = edit_image(module, image, mask, "a handwritten eight", n=4, generator=torch.Generator().manual_seed(0))
    codes = module.image_codes(image)[0]
    assert edits.keep.tolist() == [not (1 <= i // 4 <= 2 and 1 <= i % 4 <= 2) for i in range(16)]
    tokens = drawn[0]
    assert torch.equal(tokens[:, edits.keep], codes[edits.keep].expand(4, -1))
    assert len({tuple(row) for row in tokens[:, ~edits.keep].tolist()}) > 1, "the hole is drawn, not copied"
    assert torch.equal(edits.images[:, :, ~mask], edits.reconstruction.expand(4, -1, -1, -1)[:, :, ~mask])
    # The command: a muse checkpoint edits as a parti one does.
    Image.fromarray(((image[0, 0] + 1) * 127.5).round().byte().numpy()).save(tmp_path / "in.png")
    cfg = compose_edit(tmp_path, f"ckpt_path={checkpoint}", f"image={tmp_path / 'in.png'}", "mask=bottom",
                       "prompt=a handwritten eight", "n=2", "n_candidates=2", "rerank=agreement")
    paths = edit(cfg, tmp_path / "out")
    assert [p.name for p in paths] == ["000.png", "001.png"] and (paths[0].parent / "sheet.png").is_file()


# A checkpoint every 2 optimizer steps; 2 epochs of 4 batches.
RESUME = ["trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
          "trainer.deterministic=true", "trainer.cpu_threads=1", "callbacks.model_checkpoint.every_n_g_steps=2",
          "data.batch_size=16"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "decoder,stop_after",
    [("muse", 2), ("muse", 4), ("parti", 4)],  # mid-epoch; the last step of an epoch, before its validation
)
def test_preempted_and_resumed_run_equals_the_uninterrupted_run(tmp_path, monkeypatch, decoder, stop_after):
    overrides = [*(MUSE if decoder == "muse" else PARTI), *RESUME]
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    train(compose_train(tmp_path, *overrides, f"paths.output_dir={full_dir}", fast=False))
    original = ImageTokenModule.training_step

    def training_step(self, batch, batch_idx):
        result = original(self, batch, batch_idx)
        if self.trainer.global_step == stop_after - 1:  # counted after training_step returns
            os.kill(os.getpid(), signal.SIGUSR1)
        return result

    with monkeypatch.context() as patch:
        patch.setattr(ImageTokenModule, "training_step", training_step)
        train(compose_train(tmp_path, *overrides, f"paths.output_dir={cut_dir}", fast=False))
    assert read_checkpoint(cut_dir / "checkpoints" / "last.ckpt")["global_step"] == stop_after
    train(compose_train(tmp_path, *overrides, f"paths.output_dir={cut_dir}", "ckpt_path=last", fast=False))
    full, resumed = (read_checkpoint(d / "checkpoints" / "last.ckpt") for d in (full_dir, cut_dir))
    assert full["global_step"] == resumed["global_step"] == 8
    for key, tensor in full["state_dict"].items():
        torch.testing.assert_close(tensor, resumed["state_dict"][key], rtol=0, atol=0, msg=key)
    for pid, state in full["optimizer_states"][0]["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(value, resumed["optimizer_states"][0]["state"][pid][name], rtol=0, atol=0)
