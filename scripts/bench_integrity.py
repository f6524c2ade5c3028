"""The cost of checking a checkpoint's checksum, against reading the checkpoint itself.

    python scripts/bench_integrity.py [--mb 256] [--repeats 3]

Writes a checkpoint of about ``--mb`` MiB of float32 tensors with ``write_atomically`` (sealed with its SHA-256), then
times, best of ``--repeats``: ``torch.load`` of the file (the baseline: what every resume and sample does anyway) and
``check_sealed`` (what is now done before it). Prints both and their ratio. The file is read from the page cache in
both (written just before), so both measure CPU work, not the disk.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from parti_exp.runtime.checkpoints import write_atomically
from parti_exp.runtime.integrity import check_sealed


def best_of(repeats: int, call) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "last.ckpt"
        tensors = {f"w{i}": torch.randn(2**20) for i in range(args.mb // 4)}  # 4 MiB each
        write_atomically({"state_dict": tensors}, path)
        size = path.stat().st_size / 2**20
        load = best_of(args.repeats, lambda: torch.load(path, map_location="cpu", weights_only=True))
        check = best_of(args.repeats, lambda: check_sealed(path).ok or exit("the fresh checkpoint failed its check"))
    print(f"checkpoint: {size:.0f} MiB")
    print(f"torch.load:   {load:.3f} s ({size / load:.0f} MiB/s)")
    print(f"check_sealed: {check:.3f} s ({size / check:.0f} MiB/s)")
    print(f"check / load: {check / load:.2f}")


if __name__ == "__main__":
    main()
