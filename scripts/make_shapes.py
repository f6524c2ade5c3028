"""Write a captioned folder of coloured shapes (Hugging Face imagefolder: ``metadata.jsonl`` beside ``images/``),
one colour-shape combination held out (a blue triangle):

    python scripts/make_shapes.py shapes/ [--n 600] [--size 32] [--seed 0]

then train on it with ``data=captions data.path=shapes/`` (README, "Your own captioned images").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from parti_exp.testing.shapes import HELD_OUT, combinations, write_shapes_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_shapes_folder(args.out, args.n, args.size, args.seed)
    print(f"wrote {args.n} images of {len(combinations())} colour-shape combinations to {args.out} "
          f"(held out: a {' '.join(HELD_OUT)})")


if __name__ == "__main__":
    main()
