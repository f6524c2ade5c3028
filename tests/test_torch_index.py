"""make install's choice of torch build (scripts/torch_index.py): the CPU build only where no NVIDIA GPU is visible
and PyTorch's CPU index answers; a GPU machine, or one that reaches only the package index, keeps its install."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
from torch_index import CPU_INDEX, torch_index  # noqa: E402


def never(*args):
    raise AssertionError("not asked")


@pytest.mark.parametrize(
    ("choice", "gpu", "reachable", "expected"),
    [
        ("auto", False, True, CPU_INDEX),
        ("auto", False, False, None),  # only the package index (this machine, CI): the install as before
        ("auto", True, True, None),  # a GPU: the default (CUDA) build
        ("cpu", None, None, CPU_INDEX),
        ("default", None, None, None),
    ],
)
def test_the_cpu_build_only_where_it_cannot_replace_a_gpu_build(choice, gpu, reachable, expected):
    asked = []

    def gpu_visible():
        asked.append("gpu")
        return gpu

    def index_reachable(url):
        asked.append(url)
        return reachable

    assert torch_index(choice, gpu_visible if gpu is not None else never,
                       index_reachable if reachable is not None else never) == expected
    if choice == "auto" and gpu:
        assert asked == ["gpu"]  # a GPU machine does not even try the CPU index


def test_an_unknown_choice_is_refused_and_the_script_prints_one_line():
    with pytest.raises(SystemExit, match="TORCH=gpu: give one of auto, cpu, default"):
        torch_index("gpu", never, never)
    done = subprocess.run([sys.executable, str(SCRIPTS / "torch_index.py"), "cpu"], capture_output=True, text=True)
    assert done.stdout == CPU_INDEX + "\n"
