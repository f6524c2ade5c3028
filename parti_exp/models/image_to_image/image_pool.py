"""CycleGAN's history of generated images (Shrivastava et al. 2017; Zhu et al. 2017): D is updated on a mix of this
step's fakes and earlier ones, so that it does not chase G's latest change and oscillate with it.

Until the pool holds ``size`` images each fake is stored and passed on; after that each fake is, with probability
one half, swapped for a random stored one (which it replaces) and otherwise passed on. The coins and the slots come
from torch's global CPU generator, whose state every checkpoint keeps (``RandomStateCheckpoint``); the stored images
are saved with the module, so a resumed run continues with the same pool.
"""

from __future__ import annotations

import torch

from parti_exp.runtime.validation import is_int_at_least, require


class ImagePool:
    def __init__(self, size: int = 50) -> None:
        require(is_int_at_least(size, 0), "model.pool_size", f"must be an integer >= 0 (0: no pool), got {size!r}")
        self.size = size
        self.images: torch.Tensor | None = None  # (size, C, H, W) once the first fakes arrive
        self.count = 0

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """The batch D sees in place of ``fakes`` (detached)."""
        if self.size == 0:
            return fakes
        if self.images is None:
            self.images = torch.empty(self.size, *fakes.shape[1:], dtype=fakes.dtype, device=fakes.device)
        out = fakes.clone()
        stored = min(self.size - self.count, len(fakes))
        self.images[self.count : self.count + stored] = fakes[:stored]
        self.count += stored
        rest = len(fakes) - stored
        if rest:
            swap = torch.rand(rest) < 0.5
            slots = torch.randint(self.size, (rest,))
            where = torch.nonzero(swap).flatten()
            # A slot drawn twice in one batch hands out its older image both times and keeps the last fake: batch-wise,
            # where the paper's loop would go image by image.
            positions, slots = (stored + where).to(fakes.device), slots[where].to(fakes.device)
            out[positions] = self.images[slots].to(out.dtype)
            self.images[slots] = fakes[positions].to(self.images.dtype)
        return out

    def state_dict(self) -> dict:
        return {"images": self.images, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.images = state["images"]
        self.count = int(state["count"])
