"""Real-image statistics on disk, one file per (dataset split, image selection, feature extractor).

Extracting features of the real images is the expensive half of FID (50,000 CIFAR-10 images through
Inception); it depends only on the images and the extractor's weights, so it is done once and every later
epoch and run loads the file. The key hashes the images themselves (pixels, shape, labels), not the data
config: a changed resize or a re-downloaded dataset misses, a moved data directory still hits.

Beside each statistics file, under the same key in ``real_knn/``, a file holds the fixed subset of real features
that precision, recall, density and coverage compare with, and its nearest-neighbour radii (``prdc.real_state``).
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
        self.knn_dir = Path(cache_dir) / "real_knn"

    def path(self, dataset: str, split: str, images_fingerprint: str, extractor_fingerprint: str) -> Path:
        key = text_fingerprint(images_fingerprint, extractor_fingerprint, FORMAT_VERSION)
        return self.dir / f"{dataset}-{split}-{key}.pt"

    def knn_path(self, stats_path: Path, num_real_knn: int, neighbours: tuple[int, ...]) -> Path:
        """The real kNN subset's file for ``stats_path``: the same name, with its size and neighbour counts added."""
        return self.knn_dir / f"{stats_path.stem}-knn{num_real_knn}-k{'-'.join(map(str, neighbours))}.pt"

    def load(self, path: Path) -> dict[str, torch.Tensor] | None:
        return load_if_present(path)

    def save(self, path: Path, state: dict[str, torch.Tensor]) -> Path:
        return atomic_save(state, path)
