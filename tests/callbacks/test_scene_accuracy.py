"""Scene accuracy: grouping by seen / held-out content and category, and its value for models that draw true
scenes, mirrored scenes, or the wrong number of digits."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from parti_exp.callbacks.scene_accuracy import SceneAccuracy, scene_accuracy, score_scenes
from parti_exp.data import DigitScenesDataModule, DigitsDataModule
from parti_exp.data.captions.scene_spec import EMPTY, ScenePrompt, SceneSpec
from parti_exp.errors import ConfigError
from parti_exp.metrics.scene_reader import load_scene_reader
from parti_exp.models.text_to_image.sampling import SamplingConfig

E = EMPTY


def test_scores_are_grouped_by_held_out_and_category():
    seven = ScenePrompt("a seven", SceneSpec("identity", (7,)), held_out=False)
    three_left = ScenePrompt("a 3 to the left of a 1", SceneSpec("left_right", (3, 1)), held_out=False)
    held = ScenePrompt("a 3 above an 8", SceneSpec("above_below", (3, 8)), held_out=True)
    prompts = [seven, seven, three_left, three_left, held, held]
    read = torch.tensor([
        [E, 7, E, E],  # right
        [E, 7, 1, E],  # an extra digit
        [3, 1, E, E],  # right
        [1, 3, E, E],  # mirrored
        [3, E, 8, E],  # right
        [3, E, E, 8],  # diagonal
    ])
    assert score_scenes(prompts, read) == {
        "scene_accuracy": 0.5,
        "scene_accuracy_identity": 0.5,
        "scene_accuracy_left_right": 0.5,
        "scene_accuracy_heldout": 0.5,
        "scene_accuracy_heldout_above_below": 0.5,
    }


def test_callback_settings_are_checked():
    with pytest.raises(ValueError, match="scene_accuracy.per_prompt must be >= 1"):
        SceneAccuracy(cache_dir="unused", per_prompt=0)
    with pytest.raises(ValueError, match="scene_accuracy.every_n_epochs must be an integer >= 1"):
        SceneAccuracy(cache_dir="unused", every_n_epochs=0)


def test_scene_accuracy_refuses_other_data(tmp_path):
    # Composed for data=digit_scenes only (conf/model_data/parti_digit_scenes.yaml); added by hand to other data, it
    # says so before anything is trained.
    callback = SceneAccuracy(cache_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"reads digit scenes \(data=digit_scenes\), not digits: set "
                       r"callbacks.scene_accuracy=null"):
        callback.setup(SimpleNamespace(datamodule=DigitsDataModule()), None, "fit")
    assert callback.reader is None and not any(tmp_path.iterdir())  # no classifier trained


class ComposingModel:
    """Stands in for a text-to-image model: draws each prompt's content from real validation digits, in a layout
    that ``arrange`` may spoil (mirror, drop a digit)."""

    device = torch.device("cpu")

    def __init__(self, dm: DigitScenesDataModule, prompts: list[ScenePrompt], arrange) -> None:
        self.digits = dm.digits.val_set
        self.spec_of = {prompt.text: prompt.spec for prompt in prompts}
        self.arrange = arrange
        self.sampled_with: list[SamplingConfig] = []

    def sample_images(self, captions, sampling, generator):
        self.sampled_with.append(sampling)
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        canvases = np.zeros((len(captions), 1, 32, 32), dtype=np.uint8)
        for canvas, caption in zip(canvases, captions):
            layouts = self.spec_of[caption].layouts()
            cells = self.arrange(list(layouts[rng.integers(len(layouts))]))
            for index, digit in enumerate(cells):
                if digit != EMPTY:
                    source = rng.choice(np.flatnonzero(self.digits.labels == digit))
                    row, column = divmod(index, 2)
                    canvas[:, row * 16 : row * 16 + 16, column * 16 : column * 16 + 16] = self.digits.images[source]
        return torch.from_numpy(canvases).float() / 127.5 - 1


def mirrored(cells):
    """Left <-> right: cells (0, 1, 2, 3) -> (1, 0, 3, 2)."""
    return [cells[1], cells[0], cells[3], cells[2]]


def one_digit_fewer(cells):
    first = next(index for index, digit in enumerate(cells) if digit != EMPTY)
    return [EMPTY if index == first else digit for index, digit in enumerate(cells)]


@pytest.mark.slow
def test_accuracy_of_true_mirrored_and_short_scenes(scene_reader_cache):
    dm = DigitScenesDataModule(num_train=64, num_val=8)
    dm.setup()
    reader = load_scene_reader(dm.digits, scene_reader_cache, torch.device("cpu"))
    prompts = dm.evaluation_prompts(specs_per_category=5, phrasings=2, seed=0)
    sampling = SamplingConfig(guidance_scale=3.0)

    def accuracy(arrange):
        return scene_accuracy(ComposingModel(dm, prompts, arrange), reader, prompts, 4, sampling, batch_size=64)

    true = accuracy(lambda cells: cells)
    assert set(true) == {f"scene_accuracy{held}{category}" for held in ("", "_heldout")
                         for category in ("", "_count", "_left_right", "_above_below")} | {
        "scene_accuracy_identity"}
    # the reader's ceiling on real scenes is about 0.89 (tests/metrics/test_scene_reader.py)
    assert min(true.values()) >= 0.75 and true["scene_accuracy"] >= 0.85
    wrong_side = accuracy(mirrored)
    assert wrong_side["scene_accuracy_left_right"] == wrong_side["scene_accuracy_heldout_left_right"] == 0.0
    # Mirroring left-right keeps a column's order and any count.
    assert wrong_side["scene_accuracy_above_below"] >= 0.75 and wrong_side["scene_accuracy_count"] >= 0.75
    assert max(accuracy(one_digit_fewer).values()) == 0.0
