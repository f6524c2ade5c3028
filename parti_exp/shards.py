"""python -m parti_exp.shards write data=<dataset> out_dir=DIR: write any dataset the project reads as webdataset
shards in img2dataset's layout (``parti_exp.data.shard_writer``), to stream it with ``data=webdataset``.

python -m parti_exp.shards encode data=webdataset data.urls=SHARDS tokenizer_ckpt=CKPT out_dir=DIR: the same shards
with each sample's image tokenizer codes added (``parti_exp.data.code_shards``), for stage-2 training with
``model.code_cache=true``."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import build_datamodule, resolve_device
from parti_exp.data.code_shards import encode_shards
from parti_exp.data.image_codes import CodeRequest, weights_key
from parti_exp.data.shard_writer import write_split
from parti_exp.errors import ConfigError
from parti_exp.models.text_to_image.token_model import load_image_tokenizer
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.validation import require

ACTIONS = ("write", "encode")


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


def encode(cfg: DictConfig) -> dict[str, list[Path]]:
    """Write the shards of ``cfg.data.urls`` (``data=webdataset``) with their codes under ``cfg.out_dir``."""
    require(cfg.data.get("urls") is not None, "data", "must be data=webdataset with data.urls=<the image shards>")
    require(cfg.get("tokenizer_ckpt"), "tokenizer_ckpt", "must name the stage-1 checkpoint (model=vqgan) to encode "
            "with: the model.tokenizer_ckpt of the stage-2 runs that will read these shards")
    datamodule = build_datamodule(cfg)
    device = resolve_device(cfg.device)
    tokenizer, _ = load_image_tokenizer(str(cfg.tokenizer_ckpt))
    tokenizer.eval().to(device)
    request = CodeRequest(tokenizer.encode, weights_key(tokenizer), tokenizer.codebook_size, Path(cfg.out_dir),
                          device, cfg.encode_batch_size)
    mirrored = datamodule.hflip if cfg.mirrored is None else bool(cfg.mirrored)
    return {"train": encode_shards(cfg.data.urls, datamodule.form, request, Path(cfg.out_dir), mirrored,
                                   datamodule.skip_bad)}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="shards")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    with job_log():
        written = ACTION(cfg)
    for split, shards in written.items():
        print(f"{split}: wrote {len(shards)} shards to {shards[0].parent if shards else cfg.out_dir}")


if __name__ == "__main__":
    # The action comes first, as in `python -m parti_exp.shards write data=digits out_dir=...`.
    if len(sys.argv) < 2 or sys.argv[1] not in ACTIONS:
        sys.exit(f"usage: python -m parti_exp.shards {{{','.join(ACTIONS)}}} data=<dataset> out_dir=DIR "
                 "[key=value ...]")
    ACTION = {"write": write, "encode": encode}[sys.argv.pop(1)]
    main()
