"""Caption accuracy reads each sample's class back, so it is composed only where captions name one class
(conf/model_data/parti_<data>.yaml); added by hand to other data, it refuses before anything is trained. Its counting
is tested with a trained model in tests/models/text_to_image/test_text_to_image_training.py."""

from types import SimpleNamespace

import pytest
import torch

from parti_exp.callbacks.caption_accuracy import CaptionAccuracy
from parti_exp.data.captions.sources import ImageCaptions
from parti_exp.errors import ConfigError


class CaptionedImages:
    """Stands in for a captioned dataset: free-text captions, no classes."""

    name = "captions_folder"

    def setup(self, stage: str | None = None) -> None:
        pass

    def caption_source(self) -> ImageCaptions:
        return ImageCaptions([["a red bus"], ["two cats on a sofa"]], num_train=1, prompt_ids=[1])


def test_caption_accuracy_refuses_free_text_captions(tmp_path):
    callback = CaptionAccuracy(cache_dir=str(tmp_path))
    trainer, module = SimpleNamespace(datamodule=CaptionedImages()), SimpleNamespace(device=torch.device("cpu"))
    with pytest.raises(ConfigError, match="captions_folder's captions do not name one class per image: set "
                       "callbacks.caption_accuracy=null"):
        callback.setup(trainer, module, "fit")
    assert callback.reader is None and not any(tmp_path.iterdir())  # no classifier trained
