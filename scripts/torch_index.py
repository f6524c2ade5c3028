"""Which package index `make install` takes torch from: prints the index URL of PyTorch's CPU build, or nothing (the
default index's build: CUDA on Linux).

    python scripts/torch_index.py [auto|cpu|default]

``auto`` (the Makefile's default) picks the CPU build only where it cannot take a GPU's place: no NVIDIA GPU is
visible (no ``nvidia-smi -L`` that lists one, no ``/proc/driver/nvidia``) and the CPU index answers within 5 s (a
machine that reaches only a mirror of PyPI keeps its usual install). The CPU wheel of torch 2.13 is 192 MB and an
environment with it 1.6 GB; the default build pulls the nvidia-* wheels with it, and the environment is 6.1 GB.
torchvision comes from the same index: PyPI's torchvision is built against the CUDA torch and does not load with the
CPU one. ``cpu`` and ``default`` force the choice. Standard library only: it runs before the environment has anything
in it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CHOICES = ("auto", "cpu", "default")


def nvidia_gpu_visible() -> bool:
    if Path("/proc/driver/nvidia").exists():
        return True
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return True  # a driver tool that hangs is still a driver: keep the default build
    return listed.returncode == 0 and "GPU" in listed.stdout


def reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
        return True
    except OSError:
        return False


def torch_index(choice: str, gpu_visible, index_reachable) -> str | None:
    """The CPU index, or None for the default one; ``gpu_visible`` and ``index_reachable`` are asked only when
    ``choice`` is auto."""
    if choice not in CHOICES:
        raise SystemExit(f"TORCH={choice}: give one of {', '.join(CHOICES)}")
    if choice == "cpu":
        return CPU_INDEX
    if choice == "default" or gpu_visible():
        return None
    return CPU_INDEX if index_reachable(CPU_INDEX + "/") else None


if __name__ == "__main__":
    index = torch_index(sys.argv[1] if len(sys.argv) > 1 else "auto", nvidia_gpu_visible, reachable)
    print(index or "")
