"""Model folders against checkpoints on the digits presets: size on disk, load time, and the demo's time from a click
to its images.

For each preset (conf/experiment/*_digits, quickstart, quickstart_vae) a short run (one epoch of two batches: sizes
depend on the architecture, not on how long it trained) writes a .ckpt; ``python -m parti_exp.export`` turns it into
a folder. Printed per preset: the .ckpt's bytes, the folder's (all files, and model.safetensors alone), their ratio;
the median of ``--repeats`` loads (``read_checkpoint`` + ``module_from_checkpoint``, what every command does) of each,
and their ratio; and, for the presets the demo serves, the seconds from a click of Generate (through gradio_client, as
the page's button calls it) to the images, the first click and the median of three more.

    python scripts/bench_export.py [--presets quickstart parti_digits] [--repeats 5] [--work /tmp/bench_export]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from parti_exp import CONF_DIR
from parti_exp.inference.export import export_model
from parti_exp.runtime.checkpoints import module_from_checkpoint, read_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_server import served_demo  # noqa: E402  (a sibling script)

REPO = Path(__file__).resolve().parent.parent
SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "metrics=none",
         "trainer.cpu_threads=1", "trainer.enable_progress_bar=false", "logger=csv"]
# Stage 2 needs its tokenizer's run; the callbacks that measure captions are off (they train a judge first).
STAGE_2 = ["callbacks.caption_accuracy=null", "callbacks.prompt_grid=null"]
PRESETS = {
    "quickstart": [],
    "quickstart_vae": [],
    "sr_digits": [],
    "denoise_digits": [],
    "cyclegan_digits": [],
    "tokenizer_digits": [],
    "contrastive_digits": [],
    "parti_digits": STAGE_2,
    "muse_digits": STAGE_2,
}
TEXT = ("parti_digits", "muse_digits")
DEMO = {"quickstart": ["0", "16", "1.0", "every class in turn"],
        "quickstart_vae": ["0", "16", "1.0", "every class in turn"],
        "parti_digits": ["a handwritten seven", "4", "2.0", "1.0", "1", "0"],
        "muse_digits": ["a handwritten seven", "4", "2.0", "1.0", "1", "0"]}


def train(preset: str, work: Path, tokenizer: Path | None) -> Path:
    run = work / preset
    if not (run / "checkpoints" / "last.ckpt").is_file():
        extra = [f"model.tokenizer_ckpt={tokenizer}"] if preset in TEXT else []
        subprocess.run([sys.executable, "-m", "parti_exp.train", f"experiment={preset}", *SHORT, *PRESETS[preset],
                        *extra, f"paths.output_dir={run}", f"hydra.run.dir={run}"], cwd=REPO, check=True,
                       capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return run / "checkpoints" / "last.ckpt"


def export(preset: str, ckpt: Path, work: Path) -> Path:
    folder = work / f"{preset}_folder"
    if folder.is_dir():
        return folder
    options = ['prompts=["a handwritten seven"]', "n=4"] if preset in TEXT else ["n=16"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="export", overrides=[f"ckpt_path={ckpt}", f"out_dir={folder}", "device=cpu",
                                                       f"paths.root_dir={work}", *options])
    return export_model(cfg, torch.device("cpu"))


def load_seconds(path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        module_from_checkpoint(read_checkpoint(path))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def demo_seconds(folder: Path, inputs: list[str], work: Path) -> tuple[float, float]:
    """(first click, median of the next three) from predict() to its result, the demo serving ``folder``."""
    from gradio_client import Client

    with served_demo(folder, work, "device=cpu") as url:
        client = Client(url, verbose=False)
        values = [float(v) if v.replace(".", "").isdigit() else v for v in inputs]
        times = []
        for _ in range(4):
            start = time.perf_counter()
            client.predict(*values, api_name="/generate")
            times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_export"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    tokenizer = None
    if any(p in TEXT for p in args.presets):
        tokenizer = train("tokenizer_digits", args.work, None)
    print("| preset | .ckpt | folder (model.safetensors) | folder / .ckpt | load .ckpt | load folder | folder / .ckpt "
          "| demo: first click | demo: next clicks |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets:
        ckpt = train(preset, args.work, tokenizer)
        folder = export(preset, ckpt, args.work)
        ckpt_size, size = ckpt.stat().st_size, folder_bytes(folder)
        weights = sum(p.stat().st_size for p in folder.rglob("model.safetensors"))
        read_checkpoint(ckpt), read_checkpoint(folder)  # warm the page cache and the imports for both
        from_ckpt, from_folder = load_seconds(ckpt, args.repeats), load_seconds(folder, args.repeats)
        if preset in DEMO:
            first, rest = demo_seconds(folder, DEMO[preset], args.work)
            demo = f"{first:.2f} s | {rest:.2f} s"
        else:
            demo = "not timed (a translator's page takes an upload; a tokenizer or scorer has none) | -"
        print(f"| {preset} | {ckpt_size / 1e6:.2f} MB | {size / 1e6:.2f} MB ({weights / 1e6:.2f} MB) | "
              f"{size / ckpt_size:.2f} | {from_ckpt * 1e3:.0f} ms | {from_folder * 1e3:.0f} ms | "
              f"{from_folder / from_ckpt:.2f} | {demo} |", flush=True)


if __name__ == "__main__":
    main()
