"""data=webdataset: shards in img2dataset's exact layout (written by hand with webdataset's TarWriter, and by the
converter), read once per epoch over ranks x workers, in an order set by (seed, epoch), with bad samples named or
skipped and counted."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from hydra import compose, initialize_config_dir
from PIL import Image

from parti_exp import CONF_DIR
from parti_exp.data import DigitsDataModule, WebDatasetDataModule
from parti_exp.data.captions.streamed import caption_rows, captions_of_rows
from parti_exp.data.decode import resize_center_crop, to_chw
from parti_exp.data.shard_plan import Segment, count_samples, epoch_pieces, list_shards
from parti_exp.data.shard_writer import write_split
from parti_exp.data.streaming import ShardStream
from parti_exp.errors import BadDataError, ConfigError, MissingInputError
from parti_exp.shards import write


def jpeg(rng: np.random.Generator, height: int = 20, width: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def write_img2dataset(folder: Path, sizes: list[int], seed: int = 0, bad: dict[str, str] | None = None) -> list[str]:
    """Shards as img2dataset writes them: ``00000.tar`` with ``<shard><index>.jpg/.txt/.json`` per sample, and
    ``00000_stats.json`` and ``00000.parquet`` beside each. Each caption names its key, so a test reads the keys
    back from the batches. ``bad`` maps a key to what is wrong with it (no_caption, no_image, corrupt)."""
    rng, keys, bad = np.random.default_rng(seed), [], bad or {}
    folder.mkdir(parents=True, exist_ok=True)
    for shard, size in enumerate(sizes):
        with wds.TarWriter(str(folder / f"{shard:05d}.tar")) as sink:
            for index in range(size):
                key = f"{shard:05d}{index:04d}"
                keys.append(key)
                sample = {"__key__": key, "jpg": jpeg(rng), "txt": f"photo {key}",
                          "json": {"key": key, "caption": f"photo {key}", "status": "success", "width": 24}}
                if bad.get(key) == "no_caption":
                    del sample["txt"]
                if bad.get(key) == "no_image":
                    del sample["jpg"]
                if bad.get(key) == "corrupt":
                    sample["jpg"] = sample["jpg"][:40]
                sink.write(sample)
        (folder / f"{shard:05d}_stats.json").write_text(json.dumps({"count": size, "successes": size}))
        (folder / f"{shard:05d}.parquet").write_bytes(b"PAR1not-a-shard")
    return keys


def keys_of(labels: torch.Tensor) -> list[str]:
    return [captions[0].removeprefix("photo ") for captions in captions_of_rows(labels)]


def epoch_keys(module: WebDatasetDataModule, rank: int, ranks: int, workers: int, epoch: int = 0) -> list[str]:
    """The keys one rank reads in an epoch, in batch order, through a real DataLoader with ``workers`` processes."""
    module.setup()
    stream = ShardStream(module.segments, module.form, module.batch_size, workers, 7, module.shuffle_buffer,
                         module.skip_bad, rank, ranks)
    # One worker is read in this process (its log reaches the test); more in worker processes.
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers if workers > 1 else 0)
    stream.epoch = epoch
    return [key for _, labels in loader for key in keys_of(labels)]


def module(folder: Path, **kwargs) -> WebDatasetDataModule:
    settings = {"img_size": 16, "val_samples": 4, "batch_size": 4, "shuffle_buffer": 8, **kwargs}
    return WebDatasetDataModule(str(folder), **settings)


def test_caption_rows_round_trip():
    captions = [["a cat", "ein Kätzchen"], ["x"], ["  "[:0] or "üñí"]]
    rows = caption_rows(captions)
    assert rows.dtype == torch.uint8 and rows.shape == (3, len("a cat\nein Kätzchen".encode()))
    assert captions_of_rows(rows) == captions


def test_listing_takes_the_tar_files_and_leaves_the_stats_and_parquet(tmp_path):
    write_img2dataset(tmp_path / "cc", [3, 5])
    shards = list_shards(str(tmp_path / "cc"))
    assert [Path(s).name for s in shards] == ["00000.tar", "00001.tar"]
    assert list_shards(str(tmp_path / "cc" / "{00000..00001}.tar")) == shards
    assert [count_samples(s) for s in shards] == [3, 5]
    with pytest.raises(MissingInputError, match="00002.tar does not exist"):
        list_shards(str(tmp_path / "cc" / "{00000..00002}.tar"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingInputError, match="names no shard"):
        list_shards(str(tmp_path / "empty"))


def test_images_and_captions_as_the_shards_hold_them(tmp_path):
    keys = write_img2dataset(tmp_path / "cc", [6])
    data = module(tmp_path / "cc", val_samples=2, reference_samples=100)
    data.setup()
    with tarfile.open(tmp_path / "cc" / "00000.tar") as tar:
        first = Image.open(io.BytesIO(tar.extractfile(f"{keys[0]}.jpg").read())).convert("RGB")
    assert np.array_equal(data.train_set.images[0], to_chw(resize_center_crop(first, 16)))
    # The last samples are held out for validation; the rest are training samples.
    assert keys_of(torch.from_numpy(data.train_set.labels)) == keys[:4]
    assert keys_of(torch.from_numpy(data.val_set.labels)) == keys[4:]
    # A .json field as the caption.
    by_field = module(tmp_path / "cc", val_samples=2, caption_key="caption")
    assert by_field.caption_source().corpus() == [f"photo {key}" for key in keys[:4]]


@pytest.mark.parametrize("sizes", [[13, 7, 22, 9, 11], [64]], ids=["uneven_shards", "one_shard_for_four_workers"])
def test_every_sample_once_per_epoch_over_two_ranks_and_two_workers(tmp_path, sizes):
    keys = write_img2dataset(tmp_path / "cc", sizes)
    data = module(tmp_path / "cc", val_samples=2)
    train_keys = set(keys[:-2])
    read = [epoch_keys(data, rank, 2, 2) for rank in (0, 1)]
    both = read[0] + read[1]
    assert len(read[0]) == len(read[1])  # every rank makes the same number of steps
    assert len(both) == len(set(both))  # nothing read twice
    assert set(both) <= train_keys
    # Left out: less than one batch of each worker of each rank.
    assert len(train_keys) - len(both) < 2 * 2 * data.batch_size


def test_the_plan_covers_every_sample_when_it_divides(tmp_path):
    segments = [Segment("a", 0, 5), Segment("b", 0, 19), Segment("c", 3, 11)]  # 32 samples
    pieces = epoch_pieces(segments, seed=1, epoch=0, ranks=2, workers=2, batch_size=4)
    samples = [(s.url, i) for piece in pieces for s in piece for i in range(s.start, s.stop)]
    assert sorted(samples) == sorted((s.url, i) for s in segments for i in range(s.start, s.stop))
    assert [sum(map(len, piece)) for piece in pieces] == [8, 8, 8, 8]


def test_the_order_is_a_function_of_seed_and_epoch(tmp_path):
    write_img2dataset(tmp_path / "cc", [10, 10, 10, 10])
    data = module(tmp_path / "cc", val_samples=2)
    first = epoch_keys(data, 0, 1, 2, epoch=0)
    assert epoch_keys(data, 0, 1, 2, epoch=0) == first
    assert epoch_keys(data, 0, 1, 2, epoch=1) != first
    other_seed = ShardStream(data.segments, data.form, 4, 1, 8, 8, False, 0, 1)
    assert [k for _, labels in other_seed for k in keys_of(labels)] != epoch_keys(data, 0, 1, 1)


@pytest.mark.parametrize("skip_bad", [False, True])
def test_resumed_stream_serves_the_rest_of_the_epoch(tmp_path, skip_bad):
    # With skip_bad, a bad sample before the resume point must be found again for the rest to line up.
    write_img2dataset(tmp_path / "cc", [9, 14, 11], bad={"000010003": "corrupt"} if skip_bad else None)
    data = module(tmp_path / "cc", val_samples=2, skip_bad=skip_bad)
    data.setup()
    # One rank alone, and the second of two (as under trainer=ddp_sim): each resumes its own sequence.
    for rank, ranks in ((0, 1), (1, 2)):
        stream = ShardStream(data.segments, data.form, 4, 2, 3, 8, skip_bad, rank, ranks)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
        stream.epoch = 1
        whole = [keys_of(labels) for _, labels in loader]
        assert len(whole) == len(stream) == 2 * (32 // (8 * ranks))
        for done in (1, 3) if ranks == 2 else (1, 3, 6):
            stream.skip_batches = done
            assert [keys_of(labels) for _, labels in loader] == whole[done:]


def test_a_bad_sample_stops_the_run_naming_shard_and_key(tmp_path):
    for problem, message in (("no_caption", "no caption"), ("no_image", "no image"), ("corrupt", "cannot decode")):
        folder = tmp_path / problem
        write_img2dataset(folder, [8, 8], bad={"000010002": problem})
        data = module(folder, val_samples=2, reference_samples=4)
        data.setup()  # the bad sample is neither among the validation nor the first reference samples
        with pytest.raises(BadDataError, match="data.skip_bad=true") as raised:
            epoch_keys(data, 0, 1, 1)
        assert "00001.tar sample 000010002" in str(raised.value) and message in str(raised.value)


def test_skip_bad_skips_and_counts_and_keeps_the_step_count(tmp_path, caplog):
    keys = write_img2dataset(tmp_path / "cc", [8, 8, 8],
                             bad={"000010002": "corrupt", "000000005": "no_caption", "000020001": "no_image"})
    data = module(tmp_path / "cc", val_samples=2, reference_samples=4, skip_bad=True)
    read = epoch_keys(data, 0, 1, 1)
    assert len(read) == (22 // 4) * 4  # the same number of batches as without bad samples
    assert not {"000010002", "000000005", "000020001"} & set(read)
    assert set(read) <= set(keys[:-2])
    assert "skipped 3 bad samples" in caplog.text


def test_too_few_samples_for_every_worker_is_refused(tmp_path):
    write_img2dataset(tmp_path / "cc", [10])
    data = module(tmp_path / "cc", val_samples=2)
    data.setup()
    with pytest.raises(ConfigError, match="fewer than one batch for every worker of every rank"):
        ShardStream(data.segments, data.form, 4, 2, 0, 8, False, 0, 2)


def test_written_digits_stream_back_as_the_digits(tmp_path):
    digits = DigitsDataModule(img_size=16, batch_size=32)
    shards = write_split(digits, "val", tmp_path / "val", maxcount=50, image_format="png")
    assert [p.name for p in shards] == ["00000.tar", "00001.tar", "00002.tar", "00003.tar"]
    assert json.loads((tmp_path / "val" / "00000_stats.json").read_text())["count"] == 50
    data = WebDatasetDataModule(str(tmp_path / "val"), str(tmp_path / "val"), img_size=16, channels=1,
                                num_classes=10, caption_key=None, label_key="cls", val_samples=8,
                                reference_samples=1000, batch_size=8)
    data.setup()
    assert np.array_equal(data.train_set.images, digits.val_set.images)  # png: lossless
    assert np.array_equal(data.train_set.labels, digits.val_set.labels)


def test_shards_command_writes_what_data_webdataset_reads(tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("shards", [f"out_dir={tmp_path / 'out'}", "splits=[val]", "maxcount=100", "image_format=png",
                                 "data.img_size=16"])
    written = write(cfg)
    assert [p.name for p in written["val"]] == ["00000.tar", "00001.tar"]
    captions = WebDatasetDataModule(str(tmp_path / "out" / "val"), img_size=16, channels=1, val_samples=8,
                                    batch_size=8).caption_source()
    assert captions.corpus()[0].startswith("a handwritten ")


def test_class_labels_and_captions_are_not_mixed(tmp_path):
    with pytest.raises(ConfigError, match="data.num_classes must be 1 with captions"):
        WebDatasetDataModule(str(tmp_path), num_classes=10, label_key="cls")


def test_resuming_mid_epoch_with_another_worker_count_is_refused(tmp_path):
    write_img2dataset(tmp_path, [10])
    mid_epoch = {"epoch": 1, "batches_done": 3, "stream_workers": 2}
    with pytest.raises(ConfigError, match=r"stopped mid-epoch with data.num_workers=2, this run has "
                                          r"data.num_workers=0.*Resume with data.num_workers=2"):
        module(tmp_path, num_workers=0).load_state_dict(mid_epoch)
    module(tmp_path, num_workers=2).load_state_dict(mid_epoch)  # the same count resumes
    at_epoch_end = {"epoch": 2, "batches_done": 0, "stream_workers": 2}
    resumed = module(tmp_path, num_workers=0)
    resumed.load_state_dict(at_epoch_end)
    assert resumed._take_resume() == (2, 0)


def test_pipe_urls_stream_what_the_files_hold(tmp_path):
    """``pipe:`` URLs (what object stores are read through: ``pipe:aws s3 cp s3://... -``, ``pipe:curl -s ...``) are
    counted and streamed like files; here the command is ``cat``, so it runs offline."""
    write_img2dataset(tmp_path / "cc", [7, 5])
    files = module(tmp_path / "cc", val_samples=2, reference_samples=100)
    piped = WebDatasetDataModule([f"pipe:cat {tmp_path / 'cc' / name}" for name in ("00000.tar", "00001.tar")],
                                 img_size=16, val_samples=2, batch_size=4, shuffle_buffer=8, reference_samples=100)
    files.setup()
    piped.setup()
    assert [len(s) for s in piped.segments] == [len(s) for s in files.segments] == [7, 3]
    assert np.array_equal(piped.train_set.images, files.train_set.images)
    assert epoch_keys(piped, 0, 1, 2) == epoch_keys(files, 0, 1, 2)


def test_the_training_image_count_is_of_every_training_sample_not_the_reference_ones(tmp_path):
    write_img2dataset(tmp_path / "cc", [6, 5])
    data = module(tmp_path / "cc", val_samples=2, reference_samples=3)
    assert data.training_images() == 9  # 11 samples, 2 held out; train_set holds the 3 reference samples
    assert len(data.train_set) == 3


def test_a_mid_epoch_checkpoint_of_another_world_size_is_refused(tmp_path):
    write_img2dataset(tmp_path / "cc", [9, 14, 11])
    data = module(tmp_path / "cc", val_samples=2)
    data.load_state_dict({"epoch": 0, "batches_done": 2, "items_done": 16, "world_size": 2})
    with pytest.raises(ConfigError, match=r"stopped in the middle of epoch 0 with 2 processes, this run has 1; a "
                                          r"stream cannot be re-sharded mid-epoch"):
        iter(data.train_dataloader())
    data.load_state_dict({"epoch": 1, "batches_done": 0, "items_done": 0, "world_size": 2})  # an epoch's end
    assert len(next(iter(data.train_dataloader()))[1]) == 4
