"""A text-to-image run's epoch grid shows each prompt above its row of samples, as sample's grid.png does."""

from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from parti_exp.callbacks.prompt_grid import PromptGrid
from parti_exp.runtime.images import save_captioned_grid

PROMPTS = ["a red circle", "a blue square"]


class Prompts:
    def prompts(self, n):
        return PROMPTS[:n]


class Model:
    device = torch.device("cpu")

    def sample_images(self, captions, generator=None):
        # Mid-grey cells: the caption's white text is the only white in the grid.
        return torch.zeros(len(captions), 3, 8, 8)


def test_the_epoch_grid_writes_each_prompt_above_its_row(tmp_path):
    grid = PromptGrid(str(tmp_path), per_prompt=3, num_prompts=2)
    datamodule = SimpleNamespace(caption_source=lambda: Prompts())
    trainer = SimpleNamespace(datamodule=datamodule, current_epoch=4, sanity_checking=False, fast_dev_run=False,
                              loggers=[], global_step=10)
    grid.on_train_epoch_end(trainer, Model())
    written = np.asarray(Image.open(tmp_path / "epoch_0004.png").convert("RGB"))
    rows = [(prompt, torch.zeros(3, 3, 8, 8)) for prompt in PROMPTS]
    expected = np.asarray(Image.open(save_captioned_grid(rows, tmp_path / "sample_grid.png")))
    assert np.array_equal(written, expected)  # the layout of sample's grid.png: caption band, then the row
    band = written[:14]
    assert band.max() > 200 and written[14:14 + 12].max() < 200  # text above the first row, not in it
