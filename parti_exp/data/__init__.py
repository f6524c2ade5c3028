"""LightningDataModules. Every one yields ``(images, labels)`` batches; images are uint8 on the
host and become float in [-1, 1] on the training device (see ``ImageDataModule``); image pairs (``paired``,
``unpaired``, ``digit_styles``) travel as two images stacked as channels (``parti_exp.data.image_pairs``). Captions
for text-to-image come from ``caption_source()``: written from the class labels, or the images' own (``captions``,
``coco``), or, for shards streamed with ``data=webdataset``, carried in the batches' labels."""

from parti_exp.data.base import ImageDataModule, UInt8ImageDataset
from parti_exp.data.captions.coco import COCODataModule
from parti_exp.data.captions.digit_scenes import DigitScenesDataModule
from parti_exp.data.captions.folder import CaptionsDataModule
from parti_exp.data.celeba import CelebADataModule
from parti_exp.data.cifar10 import CIFAR10DataModule
from parti_exp.data.digit_styles import DigitStylesDataModule
from parti_exp.data.digits import DigitsDataModule
from parti_exp.data.folder import FolderDataModule
from parti_exp.data.mnist import MNISTDataModule
from parti_exp.data.paired import PairedDataModule
from parti_exp.data.streaming import WebDatasetDataModule
from parti_exp.data.unpaired import UnpairedDataModule

__all__ = [
    "ImageDataModule",
    "UInt8ImageDataset",
    "DigitsDataModule",
    "DigitScenesDataModule",
    "MNISTDataModule",
    "CIFAR10DataModule",
    "CelebADataModule",
    "FolderDataModule",
    "CaptionsDataModule",
    "COCODataModule",
    "PairedDataModule",
    "UnpairedDataModule",
    "DigitStylesDataModule",
    "WebDatasetDataModule",
]
