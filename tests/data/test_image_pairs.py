"""The image-pair data modules: the digit styles (halves, the known mapping), real pairs in both of pix2pix's
layouts, CycleGAN's unpaired folders, and what they serve (two images stacked as channels, flipped together)."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import grey_dilation

from parti_exp.data import DigitsDataModule, DigitStylesDataModule, PairedDataModule, UnpairedDataModule
from parti_exp.data.base import random_hflip
from parti_exp.data.image_pairs import UnpairedImageDataset
from parti_exp.errors import MissingInputError
from parti_exp.protocols import ServesImagePairs


def rows(array: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in array}


def test_digit_styles_draw_each_domain_from_its_own_half_and_b_is_the_dilation():
    styles, digits = DigitStylesDataModule(batch_size=8), DigitsDataModule(img_size=16)
    styles.setup()
    digits.setup()
    assert isinstance(styles, ServesImagePairs) and not styles.aligned and styles.val_aligned
    train = styles.train_set
    a, b = train.sources, train.images
    assert len(a) + len(b) == len(digits.train_set) and abs(len(a) - len(b)) <= 1
    # A is a set of training digits as they are; B the dilations of the others: no image has its partner across
    dilated_all = grey_dilation(digits.train_set.images, size=(1, 1, 3, 3))
    a_at = [i for i, image in enumerate(digits.train_set.images) if image.tobytes() in rows(a)]
    b_at = [i for i, image in enumerate(dilated_all) if image.tobytes() in rows(b)]
    assert len(set(a_at)) == len(a) and len(set(b_at)) == len(b)  # every B image is the dilation of a train digit
    assert not set(a_at) & set(b_at)
    # dilation thickens: the ink grows by a third and more
    assert dilated_all.astype(int).sum() > digits.train_set.images.astype(int).sum() * 1.3
    val = styles.val_set
    assert np.array_equal(val.sources, digits.val_set.images)
    assert np.array_equal(val.images, grey_dilation(digits.val_set.images, size=(1, 1, 3, 3)))


def test_an_item_is_one_image_of_each_side_stacked_as_channels_and_flips_together():
    styles = DigitStylesDataModule(batch_size=8)
    styles.setup()
    pairs, labels = styles.train_set.__getitems__([0, 1, 2, 3])
    assert pairs.shape == (4, 2, 16, 16) and pairs.dtype == torch.uint8 and labels.shape == (4,)
    flipped = random_hflip(pairs.float(), torch.Generator().manual_seed(0))
    changed = [not torch.equal(f, p.float()) for f, p in zip(flipped, pairs)]
    for f, p, flip in zip(flipped, pairs.float(), changed):
        expected = p.flip(-1) if flip else p
        assert torch.equal(f, expected)  # both channels of an item flipped by the same coin


def test_unpaired_items_cover_both_sets_and_do_not_pair_files_by_position():
    a = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1).repeat(2, 2).repeat(2, 3)
    b = (100 + np.arange(4, dtype=np.uint8)).reshape(4, 1, 1, 1).repeat(2, 2).repeat(2, 3)
    dataset = UnpairedImageDataset(a, b, np.zeros(4, dtype=np.int64), seed=0)
    assert len(dataset) == 6
    pairs, _ = dataset.__getitems__(list(range(6)))
    assert sorted(pairs[:, 0, 0, 0].tolist()) == list(range(6))  # every A image once per pass
    assert set(pairs[:, 1, 0, 0].tolist()) == {100, 101, 102, 103}  # every B image at least once
    assert pairs[:4, 1, 0, 0].tolist() != [100, 101, 102, 103]  # A's i-th file does not always meet B's i-th


def write_image(path, value: int, size=(12, 12), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, (value, value // 2, 255 - value) if mode == "RGB" else value).save(path)


def test_paired_folders_pair_files_of_the_same_name(tmp_path):
    for i in range(5):
        write_image(tmp_path / "pairs" / "A" / f"{i:02d}.png", 10 * i)
        write_image(tmp_path / "pairs" / "B" / f"{i:02d}.jpg", 200 - 10 * i)
    data = PairedDataModule(path=tmp_path / "pairs", root=tmp_path, img_size=8, channels=3, batch_size=2,
                            val_fraction=0.2, decode_workers=0)
    data.setup()
    assert isinstance(data, ServesImagePairs) and data.aligned
    assert len(data.train_set) == 4 and len(data.val_set) == 1
    pairs, labels = data.train_set.__getitems__([0, 1, 2, 3])
    assert pairs.shape == (4, 6, 8, 8) and labels.tolist() == [0, 0, 0, 0]
    # each input's red level v was written beside a target of red 200 - v (JPEG within a few levels)
    red_a, red_b = pairs[:, 0].float().mean((1, 2)), pairs[:, 3].float().mean((1, 2))
    assert torch.allclose(red_a + red_b, torch.full((4,), 200.0), atol=4)
    assert np.array_equal(data.train_set.images, data.train_set.pairs[:, 3:])  # images: the targets


def test_side_by_side_pairs_are_cut_in_the_middle(tmp_path):
    for i in range(3):
        image = Image.new("L", (16, 8), 20)
        image.paste(200, (8, 0, 16, 8))  # right half: the target
        image.save(tmp_path / f"{i}.png")
    data = PairedDataModule(path=tmp_path, root=tmp_path, layout="side_by_side", val_path=tmp_path, img_size=4,
                            channels=1, batch_size=1, decode_workers=0)
    data.setup()
    pairs, _ = data.train_set.__getitems__([0, 1, 2])
    assert pairs.shape == (3, 2, 4, 4)
    assert (pairs[:, 0] == 20).all() and (pairs[:, 1] == 200).all()


def test_paired_folders_name_what_is_missing(tmp_path):
    write_image(tmp_path / "p" / "A" / "x.png", 1)
    write_image(tmp_path / "p" / "B" / "y.png", 1)
    with pytest.raises(MissingInputError, match=r"2 images have no partner.*A/x.png, B/y.png"):
        PairedDataModule(path=tmp_path / "p", root=tmp_path, decode_workers=0).check_inputs()
    with pytest.raises(MissingInputError, match="has no A/ folder"):
        PairedDataModule(path=tmp_path / "p" / "A", root=tmp_path, decode_workers=0).check_inputs()


def test_unpaired_folders_in_cyclegans_layout(tmp_path):
    counts = {"trainA": 5, "trainB": 3, "testA": 2, "testB": 2}
    for folder, count in counts.items():
        for i in range(count):
            write_image(tmp_path / "u" / folder / f"{i}.png", 50 if folder.endswith("A") else 150, mode="L")
    data = UnpairedDataModule(path=tmp_path / "u", root=tmp_path, img_size=8, channels=1, batch_size=2,
                              decode_workers=0)
    data.setup()
    assert len(data.train_set) == 5 and len(data.train_set.images) == 3 and len(data.val_set) == 2
    pairs, _ = data.train_set.__getitems__([0, 1, 2, 3, 4])
    assert (pairs[:, 0] == 50).all() and (pairs[:, 1] == 150).all()
    (tmp_path / "u" / "testB" / "0.png").unlink()
    (tmp_path / "u" / "testB" / "1.png").unlink()
    with pytest.raises(MissingInputError, match="missing or empty: testB/"):
        UnpairedDataModule(path=tmp_path / "u", root=tmp_path, decode_workers=0).check_inputs()
