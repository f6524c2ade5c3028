"""python -m parti_exp.shards write data=<dataset> out_dir=DIR: write any dataset the project reads as webdataset
shards in img2dataset's layout (``parti_exp.data.shard_writer``), to stream it with ``data=webdataset``."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import build_datamodule
from parti_exp.data.shard_writer import write_split
from parti_exp.errors import ConfigError
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.job_log import job_log

ACTIONS = ("write",)


def write(cfg: DictConfig) -> dict[str, list[Path]]:
    """Write each of ``cfg.splits`` of ``cfg.data`` under ``cfg.out_dir``; return each split's shards."""
    datamodule = build_datamodule(cfg)
    written = {}
    for split in cfg.splits:
        if split not in ("train", "val"):
            raise ConfigError(f"splits: {split!r} is not a split; use train and/or val")
        written[split] = write_split(datamodule, split, Path(cfg.out_dir) / split, cfg.maxcount, cfg.image_format,
                                     cfg.quality)
    return written


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="shards")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    with job_log():
        written = write(cfg)
    for split, shards in written.items():
        print(f"{split}: wrote {len(shards)} shards to {Path(cfg.out_dir) / split}")


if __name__ == "__main__":
    # The action comes first, as in `python -m parti_exp.shards write data=digits out_dir=...`.
    if len(sys.argv) < 2 or sys.argv[1] not in ACTIONS:
        sys.exit(f"usage: python -m parti_exp.shards {{{','.join(ACTIONS)}}} data=<dataset> out_dir=DIR "
                 "[key=value ...]")
    sys.argv.pop(1)
    main()
