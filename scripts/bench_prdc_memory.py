"""Peak memory of precision / recall / density / coverage with chunked distances against one unchunked block.

    python scripts/bench_prdc_memory.py [--real 10000] [--fake 10000] [--dim 2048] [--device cpu]

Each variant runs in a fresh process on random float32 features: the real subset's radii (``real_state``), then
the four metrics (``precision_recall_density_coverage``), with ``prdc.CHUNK_ELEMENTS`` per distance block
(what the metrics callback uses) and with one block holding a whole distance matrix. Reported: the peak memory
above what the features themselves take, measured (CUDA: ``max_memory_allocated``; CPU: the process's peak
resident size, with glibc told to map every allocation above 1 MiB on its own, so that a freed block leaves the
resident size at once) and computed from the block size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from parti_exp.metrics.prdc import CHUNK_ELEMENTS, DC_K, precision_recall_density_coverage, real_state

MIB = 2**20


def computed_peak(rows_x: int, rows_y: int, dim: int, chunk_elements: int) -> int:
    """Bytes alive at once in one step of ``distance_blocks`` (x's rows against all of y): inside torch.cdist,
    the float32 block and its padded copies of both operands (D + 2 columns each, for one matrix product);
    after it, the block and one bool mask of the same shape (the comparisons are reduced one at a time)."""
    rows = min(rows_x, max(1, chunk_elements // rows_y))
    block = 4 * rows * rows_y
    return max(block + 4 * (rows + rows_y) * (dim + 2), block + rows * rows_y)


def run_one(real: int, fake: int, dim: int, chunk_elements: int, device: str) -> dict:
    generator = torch.Generator().manual_seed(0)
    real_features = torch.randn(real, dim, generator=generator).to(device)
    fake_features = torch.randn(fake, dim, generator=generator).to(device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.max_memory_allocated()
    else:
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    real_subset = real_state(real_features, real, chunk_elements)
    values = precision_recall_density_coverage(real_subset, fake_features, chunk_elements)
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - baseline
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    return {"peak": peak, "seconds": time.perf_counter() - start, "values": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=int, default=10000)
    parser.add_argument("--fake", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)  # chunk_elements, in a child
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child is not None:
        print(json.dumps(run_one(args.real, args.fake, args.dim, args.child, args.device)))
        return

    whole = max(args.real, args.fake) ** 2  # one block: a whole distance matrix
    shape = f"{args.real} real x {args.fake} generated x {args.dim}-d float32"
    features = 4 * (args.real + args.fake) * args.dim
    print(f"torch {torch.__version__} on {args.device} ({args.threads} threads); {shape}; k = 3 and {DC_K}")
    print(f"the features themselves: {features / MIB:.0f} MiB (not counted below)")
    results = {}
    for label, chunk in (("chunked", CHUNK_ELEMENTS), ("one block", whole)):
        command = [sys.executable, __file__, f"--real={args.real}", f"--fake={args.fake}", f"--dim={args.dim}"]
        command += [f"--device={args.device}", f"--threads={args.threads}", f"--child={chunk}"]
        # Without a fixed threshold glibc keeps freed blocks of up to 32 MiB in its heap: resident, not in use.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**20)}
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        results[label] = json.loads(done.stdout)
        # The largest of the three passes: real x real radii, generated x generated radii, generated x real.
        passes = ((args.real, args.real), (args.fake, args.fake), (args.fake, args.real))
        computed = max(computed_peak(rows, columns, args.dim, chunk) for rows, columns in passes)
        print(
            f"{label:9s} ({chunk} elements per block): peak {results[label]['peak'] / MIB:7.0f} MiB measured, "
            f"{computed / MIB:7.0f} MiB computed; {results[label]['seconds']:.1f} s"
        )
    chunked, whole_block = results["chunked"]["values"], results["one block"]["values"]
    # Not asserted equal: float32 products of differently shaped blocks may differ in the last bit.
    difference = max(abs(chunked[name] - whole_block[name]) for name in chunked)
    print(f"values chunked: {chunked}; largest difference from one block: {difference:.2g}")
    ratio = results["chunked"]["peak"] / results["one block"]["peak"]
    print(f"peak memory chunked / one block: {ratio:.2f}")


if __name__ == "__main__":
    main()
