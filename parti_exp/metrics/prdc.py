"""Improved precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020).

All four compare two sets of features through k-nearest-neighbour balls: a real sample's ball reaches its k-th
nearest real neighbour, a generated sample's its k-th nearest generated neighbour.

- precision: share of generated samples inside some real ball (fidelity; k = 3).
- recall: share of real samples inside some generated ball (diversity; k = 3).
- density: real balls containing a generated sample, counted with multiplicity, per generated sample and k
  (fidelity that rewards samples where the real data is dense; about 1 for identical distributions; k = 5).
- coverage: share of real samples whose ball holds a generated sample (diversity; k = 5).

The comparisons follow the reference implementations the tests check against: ``<=`` for precision and recall
(torch-fidelity, the authors' code), ``<`` for density and coverage (the ``prdc`` package, the authors' code).

Why not call those libraries: torch-fidelity recomputes the real radii at every call and keeps its distance
blocks on the CPU, ``prdc`` builds full N x M matrices in numpy. Here the real radii are computed once (and
cached on disk with the real features), one chunked pass over generated x real distances yields all four
numbers, and every block stays on the metrics device with a bounded size (``CHUNK_ELEMENTS``).

``PrecisionRecallDensityCoverage`` is a torchmetrics ``Metric``: under DDP each rank adds its generated features
and ``compute()`` gathers them once (as for KID); the real subset and its radii are set on every rank.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

PR_K = 3  # Kynkäänniemi et al.: k = 3
DC_K = 5  # Naeem et al.: k = 5
# Elements of one distance block (rows x columns): float32 blocks of 64 MiB, whatever the set sizes.
CHUNK_ELEMENTS = 2**24
# The real subset is drawn with this seed: the same rows every run, so its cache file keeps hitting.
SUBSET_SEED = 0
NAMES = ("precision", "recall", "density", "coverage")


@contextmanager
def exact_float32_matmul() -> Iterator[None]:
    """Full float32 products inside: TF32 (10 mantissa bits), if a run enabled it, moves distances by ~1e-3
    relative, enough to carry samples across the k-NN radii."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def distance_blocks(
    x: torch.Tensor, y: torch.Tensor, chunk_elements: int = CHUNK_ELEMENTS
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Euclidean distances from ``x``'s rows to all of ``y``'s, a block of rows at a time: ``(rows, block)``
    with ``block[i, j] = |x[rows][i] - y[j]|``, at most ``chunk_elements`` entries per block (at least one row)."""
    step = max(1, chunk_elements // max(1, len(y)))
    for start in range(0, len(x), step):
        rows = slice(start, start + step)
        yield rows, torch.cdist(x[rows], y)  # (rows, len(y))


@torch.inference_mode()
def kth_neighbour_distances(
    features: torch.Tensor, ks: tuple[int, ...], what: str, chunk_elements: int = CHUNK_ELEMENTS
) -> torch.Tensor:
    """``(len(ks), N)``: each row's distance to its k-th nearest other row, for each k in ``ks``; ``what`` names
    the set (``"real"``, ``"generated"``) in the error raised when it has no more than ``max(ks)`` rows."""
    largest = max(ks)
    if len(features) <= largest:
        raise ValueError(
            f"{len(features)} {what} images are too few for the {largest}-nearest-neighbour radii of precision, "
            f"recall, density and coverage: at least {largest + 1} are needed (metrics.prdc=false leaves them out)"
        )
    radii = []
    with exact_float32_matmul():
        for _, block in distance_blocks(features, features, chunk_elements):
            # The row itself is the nearest (distance 0): the k-th other neighbour is the (k+1)-th smallest.
            nearest = block.topk(largest + 1, dim=1, largest=False).values  # (rows, largest + 1), ascending
            radii.append(nearest[:, list(ks)])
            del block  # freed before the next block is computed rather than after: one block alive at a time
    return torch.cat(radii).T


def real_state(features: torch.Tensor, num: int, chunk_elements: int = CHUNK_ELEMENTS) -> dict[str, torch.Tensor]:
    """What the four metrics need from the real set: a fixed random subset of ``num`` rows (all when there are
    fewer) and its radii for k = PR_K and k = DC_K."""
    if len(features) > num:
        generator = torch.Generator().manual_seed(SUBSET_SEED)
        index = torch.randperm(len(features), generator=generator)[:num].sort().values
        features = features[index.to(features.device)]
    radius_pr, radius_dc = kth_neighbour_distances(features, (PR_K, DC_K), "real", chunk_elements)
    return {"features": features, "radius_pr": radius_pr, "radius_dc": radius_dc}


@torch.inference_mode()
def precision_recall_density_coverage(
    real: dict[str, torch.Tensor], fake: torch.Tensor, chunk_elements: int = CHUNK_ELEMENTS
) -> dict[str, float]:
    """The four metrics of ``fake`` (M x D) against ``real`` (``real_state``'s dict), in one chunked pass."""
    real_features, radius_pr, radius_dc = real["features"], real["radius_pr"], real["radius_dc"]
    fake_radius = kth_neighbour_distances(fake, (PR_K,), "generated", chunk_elements)[0]
    precise = torch.zeros(len(fake), dtype=torch.bool, device=fake.device)
    recalled = torch.zeros(len(real_features), dtype=torch.bool, device=fake.device)
    covered = torch.zeros(len(real_features), dtype=torch.bool, device=fake.device)
    inside = torch.zeros((), dtype=torch.float64, device=fake.device)
    with exact_float32_matmul():
        for rows, block in distance_blocks(fake, real_features, chunk_elements):  # (generated rows, real)
            precise[rows] = (block <= radius_pr).any(dim=1)
            recalled |= (block <= fake_radius[rows, None]).any(dim=0)
            # In place, 1 where distance < radius, else 0 (radius - distance > 0 exactly there): a sum over a bool
            # block would first copy it to int64, twice the block's own size.
            block.neg_().add_(radius_dc).clamp_min_(0).sign_()
            inside += block.sum(dim=1).double().sum()  # row sums of at most len(real) ones: exact in float32
            # Coverage asks whether the nearest generated sample is inside the ball: whether any is.
            covered |= block.amax(dim=0) > 0
            del block  # freed before the next block is computed rather than after: one block alive at a time
    density = inside / (DC_K * len(fake))
    values = torch.stack([precise.double().mean(), recalled.double().mean(), density, covered.double().mean()])
    return dict(zip(NAMES, values.tolist()))  # one device-to-host copy for the four numbers


class PrecisionRecallDensityCoverage(Metric):
    """Generated features accumulate with ``update``; ``set_real`` installs the real subset and its radii."""

    full_state_update = False

    def __init__(self, chunk_elements: int = CHUNK_ELEMENTS) -> None:
        super().__init__()
        self.chunk_elements = chunk_elements
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        for name in ("features", "radius_pr", "radius_dc"):
            # Buffers, not states: set once on every rank, never gathered or reset, moved by .to(device).
            self.register_buffer(f"real_{name}", torch.empty(0), persistent=False)

    def update(self, features: torch.Tensor) -> None:
        # float32, as the real features are cached and as KID holds them: 8 KiB per 2048-d sample.
        self.fake_features.append(features.float())

    def set_real(self, state: dict[str, torch.Tensor]) -> None:
        """Install ``real_state``'s dict (computed now or loaded from the cache)."""
        for name, tensor in state.items():
            setattr(self, f"real_{name}", tensor.to(self.device, torch.float32))

    def real_state(self, features: torch.Tensor, num: int) -> dict[str, torch.Tensor]:
        """``real_state`` of all the real ``features``, computed on this metric's device; returned on the CPU."""
        state = real_state(features.to(self.device, torch.float32), num, self.chunk_elements)
        return {name: tensor.cpu() for name, tensor in state.items()}

    def compute(self) -> dict[str, float]:
        if not self.real_features.numel():
            raise RuntimeError("PrecisionRecallDensityCoverage.compute() needs the real features: call set_real first")
        real = {"features": self.real_features, "radius_pr": self.real_radius_pr, "radius_dc": self.real_radius_dc}
        return precision_recall_density_coverage(real, dim_zero_cat(self.fake_features), self.chunk_elements)
