"""LightningDataModules. Every one yields ``(images, labels)`` batches; images are uint8 on the
host and become float in [-1, 1] on the training device (see ``ImageDataModule``). Captions for text-to-image come
from ``caption_source()``: written from the class labels, or the images' own (``captions``, ``coco``)."""

from parti_exp.data.base import ImageDataModule, UInt8ImageDataset
from parti_exp.data.captions.coco import COCODataModule
from parti_exp.data.captions.digit_scenes import DigitScenesDataModule
from parti_exp.data.captions.folder import CaptionsDataModule
from parti_exp.data.celeba import CelebADataModule
from parti_exp.data.cifar10 import CIFAR10DataModule
from parti_exp.data.digits import DigitsDataModule
from parti_exp.data.folder import FolderDataModule
from parti_exp.data.mnist import MNISTDataModule

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
]
