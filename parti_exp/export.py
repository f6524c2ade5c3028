"""python -m parti_exp.export ckpt_path=PATH out_dir=DIR: a training checkpoint as a model folder (model.safetensors,
config.yaml, the tokenizers, samples.png and a README.md model card) that every command reads as ``ckpt_path=DIR``.

``push_to=user/name`` uploads the folder to the Hugging Face Hub when huggingface_hub, a token and the network are
there, and otherwise says how to upload it later. The folder's layout: ``parti_exp.runtime.model_folder``."""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import resolve_device
from parti_exp.inference.export import export_model
from parti_exp.inference.hub_upload import push_folder
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.job_log import job_log
from parti_exp.runtime.key_suggestions import run_with_key_suggestions
from parti_exp.runtime.run_dir import removed_if_failed_empty


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="export")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    with removed_if_failed_empty(HydraConfig.get().runtime.output_dir, cfg.task_name), job_log():
        folder = export_model(cfg, resolve_device(cfg.device))
    print(f"wrote the model folder {folder} (sample from it with ckpt_path={folder})")
    if cfg.push_to:
        print(push_folder(folder, cfg.push_to))


if __name__ == "__main__":
    run_with_key_suggestions(main, "export")
