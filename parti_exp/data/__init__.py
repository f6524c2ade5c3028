"""LightningDataModules. Every one yields ``(images, labels)`` batches; images are uint8 on the
host and become float in [-1, 1] on the training device (see ``ImageDataModule``)."""

from parti_exp.data.base import ImageDataModule, UInt8ImageDataset
from parti_exp.data.digits import DigitsDataModule

__all__ = ["ImageDataModule", "UInt8ImageDataset", "DigitsDataModule"]
