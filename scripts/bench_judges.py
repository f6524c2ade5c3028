"""How far the outside digit judges (tests/judges.py) can be trusted: the share of each control set each judge reads
as a confident digit, and its accuracy on real digits it was not fitted on.

    python scripts/bench_judges.py

The controls are built from the 597 held-out digits at 16 px, as the data module upsamples them: the digits
themselves, 50/50 blends of two different digits, Gaussian blurs, and uniform noise. tests/test_judges.py asserts
the bounds a result leaning on these judges needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from judges import blends, blurred, held_out_digits, judges, to_digit_grid, uniform_noise  # noqa: E402


def main() -> None:
    images, labels = held_out_digits(16)
    controls = {
        "held-out real": images,
        "blends of two": blends(images, labels),
        "blur sigma 1.0": blurred(images, 1.0),
        "blur sigma 1.5": blurred(images, 1.5),
        "uniform noise": uniform_noise(len(images)),
    }
    print(f"{'judge':<6} " + " ".join(f"{name:>15}" for name in controls) + "   accuracy on real")
    for judge in judges():
        shares = [judge.read(to_digit_grid(batch)).confident.mean() for batch in controls.values()]
        accuracy = (judge.read(to_digit_grid(images)).digits == labels).mean()
        print(f"{judge.name:<6} " + " ".join(f"{share:>15.3f}" for share in shares) + f"   {accuracy:.3f}")


if __name__ == "__main__":
    main()
