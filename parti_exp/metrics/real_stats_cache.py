"""Real-image statistics on disk, one file per (dataset split, image selection, feature extractor).

Extracting features of the real images is the expensive half of FID (50,000 CIFAR-10 images through
Inception); it depends only on the images and the extractor's weights, so it is done once and every later
epoch and run loads the file. The key hashes the images themselves (pixels, shape, labels), not the data
config: a changed resize or a re-downloaded dataset misses, a moved data directory still hits.
"""

from __future__ import annotations

from pathlib import Path

import torch

from parti_exp.metrics.disk_cache import atomic_save, load_if_present, text_fingerprint

FORMAT_VERSION = 1


class RealStatsCache:
    """``<cache_dir>/real_stats/<dataset>-<split>-<key>.pt`` holding the torchmetrics real-image states."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.dir = Path(cache_dir) / "real_stats"

    def path(self, dataset: str, split: str, images_fingerprint: str, extractor_fingerprint: str) -> Path:
        key = text_fingerprint(images_fingerprint, extractor_fingerprint, FORMAT_VERSION)
        return self.dir / f"{dataset}-{split}-{key}.pt"

    def load(self, path: Path) -> dict[str, torch.Tensor] | None:
        return load_if_present(path)

    def save(self, path: Path, state: dict[str, torch.Tensor]) -> Path:
        return atomic_save(state, path)
