"""Under DDP each rank's train loader serves its own shard of every epoch: the DataModules' EpochShardSampler
shards by (rank, world size) itself (Lightning's DistributedSampler injection is off). Build the loader as
Lightning requests it and check what each of 2 ranks would see."""

import numpy as np
import pytest
import torch

from parti_exp.data import CelebADataModule, CIFAR10DataModule, FolderDataModule, MNISTDataModule
from parti_exp.data.epoch_sampler import EpochShardSampler

BATCH = 4


def _mnist(tmp_path, make_mnist):
    make_mnist(tmp_path)
    return MNISTDataModule(root=tmp_path, batch_size=BATCH)


def _cifar10(tmp_path, make_cifar10):
    make_cifar10(tmp_path)
    return CIFAR10DataModule(root=tmp_path, batch_size=BATCH, verify=False)


def _celeba(tmp_path, make_celeba):
    make_celeba(tmp_path)
    return CelebADataModule(root=tmp_path, img_size=16, crop=30, batch_size=BATCH, decode_workers=0, verify=False)


def _folder(tmp_path, make_folder):
    make_folder(tmp_path / "pets")
    return FolderDataModule(
        path=tmp_path / "pets",
        root=tmp_path,
        img_size=24,
        num_classes=3,
        val_fraction=0.2,
        batch_size=BATCH,
        decode_workers=0,
    )


@pytest.fixture(params=["mnist", "cifar10", "celeba", "folder"])
def datamodule(request, tmp_path):
    build = {"mnist": _mnist, "cifar10": _cifar10, "celeba": _celeba, "folder": _folder}[request.param]
    dm = build(tmp_path, request.getfixturevalue(f"make_{request.param}"))
    dm.prepare_data()
    dm.setup()
    return dm


def _epoch_indices(dm, rank: int, epoch: int) -> list[int]:
    """Dataset indices rank ``rank`` of 2 trains on in ``epoch``, read back from the images it receives."""
    loader = dm.train_dataloader()
    sampler = loader.batch_sampler.sampler
    assert isinstance(sampler, EpochShardSampler)
    sampler.rank, sampler.world_size, sampler.seed = rank, 2, 0  # what a 2-process group would give rank `rank`
    sampler.set_epoch(epoch)  # Lightning's fit loop does this at the start of every epoch
    sharded = loader

    index_of = {image.tobytes(): i for i, image in enumerate(np.asarray(dm.train_set.images))}
    assert len(index_of) == len(dm.train_set), "fixture images must be distinct to identify them"
    seen = []
    for images, labels in sharded:
        assert images.dtype == torch.uint8 and len(images) == BATCH
        seen += [index_of[image.numpy().tobytes()] for image in images]
        expected_labels = dm.train_set.labels[[index_of[image.numpy().tobytes()] for image in images]]
        np.testing.assert_array_equal(labels.numpy(), expected_labels)
    return seen


def test_ranks_see_disjoint_shards_that_cover_the_epoch_and_change_with_it(datamodule):
    n = len(datamodule.train_set)
    per_rank = (n // 2) // BATCH * BATCH  # drop_last: each rank drops its ragged last batch
    epochs = []
    for epoch in (0, 1):
        ranks = [_epoch_indices(datamodule, rank, epoch) for rank in (0, 1)]
        for seen in ranks:
            assert len(seen) == len(set(seen)) == per_rank
        assert not set(ranks[0]) & set(ranks[1])
        assert per_rank * 2 == n, "the fixtures' sizes are chosen so that drop_last drops nothing"
        assert set(ranks[0]) | set(ranks[1]) == set(range(n))
        epochs.append(ranks)
    assert set(epochs[0][0]) != set(epochs[1][0])
    # Same seed and epoch: every rank computes the same permutation, so a rerun gives the same shard.
    assert _epoch_indices(datamodule, 0, 1) == epochs[1][0]


def test_lightning_leaves_the_samplers_alone(cfg_factory):
    """Lightning would otherwise swap in a DistributedSampler, whose order cannot resume mid-epoch."""
    assert cfg_factory("trainer=ddp_sim").trainer.use_distributed_sampler is False
