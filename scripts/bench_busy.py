"""The default run on a quiet machine, then again while other CPU-heavy processes run (a laptop doing other work, a
shared node). Starts the competing processes itself and stops them.

    python scripts/bench_busy.py [--competitors 2] [--kind torch] [--threads auto,2] [OVERRIDE ...]

Each competitor is another PyTorch job (``torch``: matrix products on PyTorch's default thread count) or a pure
Python busy loop (``spin``). For each ``--threads`` value (``trainer.cpu_threads``) it prints the quiet and the busy
wall time of the training command (cold cache, as scripts/bench_default_run.py) and busy / quiet (goal <= 2.5).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench_default_run import default_run, describe_load

COMPETITORS = {
    "torch": "import torch\na = torch.randn(768, 768)\nwhile True:\n    a = torch.tanh(a @ a)",
    "spin": "while True:\n    pass",
}


@contextmanager
def competing(n: int, kind: str):
    processes = [subprocess.Popen([sys.executable, "-c", COMPETITORS[kind]]) for _ in range(n)]
    time.sleep(3)  # let them start and take their share
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--competitors", type=int, default=2)
    parser.add_argument("--kind", choices=sorted(COMPETITORS), default="torch")
    parser.add_argument("--threads", default="auto", help="trainer.cpu_threads values to compare, comma-separated")
    parser.add_argument("--n", type=int, default=300, help="samples judged")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    print(f"{describe_load()} before starting; {args.competitors} competing {args.kind} processes when busy")
    for threads in args.threads.split(","):
        overrides = [f"trainer.cpu_threads={threads}", *args.overrides]
        with tempfile.TemporaryDirectory() as tmp:
            quiet = default_run(overrides, args.n, Path(tmp))
        with tempfile.TemporaryDirectory() as tmp, competing(args.competitors, args.kind):
            busy = default_run(overrides, args.n, Path(tmp))
        print(
            f"cpu_threads={threads}: quiet {quiet.seconds:.1f} s, busy {busy.seconds:.1f} s, "
            f"busy / quiet {busy.seconds / quiet.seconds:.2f}"
        )
        print(f"  judged quiet: {quiet}\n  judged busy:  {busy}")


if __name__ == "__main__":
    main()
