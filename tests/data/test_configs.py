"""The four data configs compose with the real config tree, build their DataModule and feed a training run."""

import numpy as np
import pytest

from parti_exp.builders import build_datamodule
from parti_exp.data import CelebADataModule, CIFAR10DataModule, FolderDataModule, MNISTDataModule
from parti_exp.train import train


@pytest.mark.parametrize(
    "name,cls,shape,num_classes",
    [
        ("mnist", MNISTDataModule, (1, 32, 32), 10),
        ("cifar10", CIFAR10DataModule, (3, 32, 32), 10),
        ("celeba", CelebADataModule, (3, 64, 64), 40),
        ("folder", FolderDataModule, (3, 64, 64), 1),
    ],
)
def test_config_builds_the_datamodule_with_its_defaults(cfg_factory, tmp_path, name, cls, shape, num_classes):
    data_dir = tmp_path / "datasets"
    folder = [f"data.path={tmp_path / 'images'}"] if name == "folder" else []
    cfg = cfg_factory(f"data={name}", f"paths.data_dir={data_dir}", *folder)
    dm = build_datamodule(cfg)
    assert type(dm) is cls
    assert (dm.channels, dm.img_size, dm.img_size) == shape
    assert dm.num_classes == num_classes
    assert dm.cache.directory == data_dir / ".cache"
    assert (cfg.model.generator.img_size, cfg.model.generator.channels) == (shape[1], shape[0])


def test_missing_data_stops_a_run_before_training(cfg_factory, tmp_path):
    cfg = cfg_factory("data=cifar10", f"paths.data_dir={tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found.*data.download=true"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_short_run_trains_on_the_cifar10_files(cfg_factory, tmp_path, make_cifar10):
    make_cifar10(tmp_path / "datasets", per_batch=16)
    cfg = cfg_factory(
        "data=cifar10",
        f"paths.data_dir={tmp_path / 'datasets'}",
        "data.verify=false",
        "data.batch_size=16",
        "trainer.max_steps=4",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
    )
    metrics = train(cfg).metrics
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert len(list((tmp_path / "datasets" / ".cache").glob("cifar10-*.images.npy"))) == 2
