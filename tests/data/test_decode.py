"""Image files from strangers: a decompression bomb is refused from its header, a bad file is named (or skipped and
counted with data.skip_bad=true, in worker processes too), and CMYK / palette / 16-bit / alpha images convert to
the configured channels as a person would expect to see them."""

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from parti_exp.data import FolderDataModule
from parti_exp.data.decode import MAX_IMAGE_PIXELS, open_image
from parti_exp.errors import BadDataError
from parti_exp.metrics.folder_images import folder_batches


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width x height`` grayscale pixels, with almost no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _setup(path: Path, root: Path, **kwargs) -> FolderDataModule:
    kwargs = {"img_size": 24, "num_classes": 3, "batch_size": 4, "val_fraction": 0.2, "decode_workers": 0, **kwargs}
    dm = FolderDataModule(path=path, root=root, **kwargs)
    dm.prepare_data()
    dm.setup()
    return dm


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    bomb = png_declaring(tmp_path / "bomb.png", 100_000, 100_000)
    # Pillow's own limit is a global other libraries switch off: ours does not depend on it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(BadDataError, match=r"declares 100000 x 100000 pixels, more than the 89,478,485") as refused:
        open_image(bomb, "RGB")
    assert str(bomb) in str(refused.value)
    side = int(MAX_IMAGE_PIXELS**0.5)
    with pytest.raises(BadDataError, match="cannot decode image"):  # within the limit: decoded, found truncated
        open_image(png_declaring(tmp_path / "big.png", side, side), "RGB")


def test_bad_files_are_named_without_a_worker_traceback(tmp_path, make_folder):
    written = make_folder(tmp_path / "pets")
    bad = written.files["all"][7]
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    with pytest.raises(BadDataError) as error:
        _setup(tmp_path / "pets", tmp_path, decode_workers=2)
    message = str(error.value)
    assert f"cannot decode image {bad}" in message and "data.skip_bad=true" in message
    assert "Traceback" not in message and "worker" not in message


@pytest.mark.parametrize("decode_workers", [0, 2])
def test_skip_bad_leaves_out_and_counts_the_bad_files(tmp_path, make_folder, caplog, decode_workers):
    written = make_folder(tmp_path / "pets")
    bad = {3: written.files["all"][3], 20: written.files["all"][20], 21: written.files["all"][21]}
    bad[3].write_bytes(b"not an image")
    bad[20].write_bytes(bad[20].read_bytes()[:100])
    png_declaring(bad[21], 50_000, 50_000)
    with caplog.at_level(logging.WARNING):
        dm = _setup(tmp_path / "pets", tmp_path, skip_bad=True, decode_workers=decode_workers)
    kept = [i for i in range(30) if i not in bad]
    images = np.concatenate([dm.train_set.images, dm.val_set.images])
    labels = np.concatenate([dm.train_set.labels, dm.val_set.labels])
    assert len(images) == 27
    # Every image kept is one that was written, with its own label.
    position = {image.tobytes(): i for i, image in enumerate(written.images["all"])}
    found = [position[image.tobytes()] for image in images]
    assert sorted(found) == kept
    np.testing.assert_array_equal(labels, written.labels["all"][found])
    messages = [record.getMessage() for record in caplog.records]
    skipped = [message for message in messages if message.startswith("skipped (data.skip_bad=true)")]
    assert len(skipped) == 3 and all(any(str(path) in message for message in skipped) for path in bad.values())
    assert any("unreadable files skipped" in message for message in messages)


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(open_image(path, "RGB")).astype(int)


def _gray(path: Path) -> np.ndarray:
    return np.asarray(open_image(path, "L")).astype(int)


def test_cmyk_becomes_the_colors_it_prints_as(tmp_path):
    # Cyan-free, full magenta and yellow, no black: red.
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "red.tif")
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "red.jpg", quality=95)
    assert (_rgb(tmp_path / "red.tif") == [255, 0, 0]).all()
    assert np.abs(_rgb(tmp_path / "red.jpg") - [255, 0, 0]).max() <= 3
    assert (_gray(tmp_path / "red.tif") == 76).all()  # ITU-R 601 luma of pure red: 0.299 * 255


def test_a_transparent_palette_entry_becomes_white(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([200, 0, 0, 0, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)  # palette entry 1 (black) is transparent
    image.save(tmp_path / "palette.png", transparency=1)
    assert _rgb(tmp_path / "palette.png").tolist() == [[[200, 0, 0], [255, 255, 255]]]


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    levels = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert _gray(tmp_path / "deep.png").tolist() == [[0, 64, 128, 255]]
    assert _rgb(tmp_path / "deep.png")[0, :, 0].tolist() == [0, 64, 128, 255]


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.array([[[10, 20, 30, 255], [10, 20, 30, 0], [0, 0, 0, 128]]], dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    pixels = _rgb(tmp_path / "rgba.png")[0]
    assert pixels[0].tolist() == [10, 20, 30] and pixels[1].tolist() == [255, 255, 255]
    assert np.abs(pixels[2] - 127).max() <= 1  # half-transparent black over white
    la = np.array([[[0, 255], [0, 0]]], dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert _gray(tmp_path / "la.png").tolist() == [[0, 255]]


def test_the_datamodule_converts_through_the_same_path(tmp_path):
    # A flat folder of transparent RGBA images, read as grayscale: white where transparent.
    folder = tmp_path / "sprites"
    folder.mkdir()
    for i in range(4):
        pixels = np.zeros((24, 24, 4), dtype=np.uint8)
        pixels[:12, :, 3] = 255  # the top half opaque black, the bottom half transparent
        Image.fromarray(pixels, "RGBA").save(folder / f"{i}.png")
    dm = _setup(folder, tmp_path, num_classes=1, channels=1, val_fraction=0.25, batch_size=2)
    images = np.asarray(dm.train_set.images)
    assert (images[:, 0, :12] == 0).all() and (images[:, 0, 12:] == 255).all()


def test_evaluate_folders_refuse_a_bomb_by_name(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "0.png")
    bomb = png_declaring(tmp_path / "1.png", 100_000, 100_000)
    with pytest.raises(BadDataError, match="not decoded") as refused:
        list(folder_batches([tmp_path / "0.png", bomb], batch_size=2))
    assert str(bomb) in str(refused.value)
