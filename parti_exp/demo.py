"""python -m parti_exp.demo ckpt_path=PATH: a local web page (Gradio) to try the model in a browser, fitted to its
family (``parti_exp.inference.demo_page``), served on 127.0.0.1 unless ``host=`` says otherwise. ``ckpt_path`` is a
model folder (``python -m parti_exp.export``), a run directory or a .ckpt. Needs the ``demo`` extra:
``pip install -e '.[demo]'``."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from parti_exp import CONF_DIR
from parti_exp.builders import resolve_device
from parti_exp.errors import UnavailableError
from parti_exp.inference.demo_actions import DemoModel
from parti_exp.inference.export import SCORER
from parti_exp.runtime.checkpoints import checkpoint_file, module_from_checkpoint, read_checkpoint
from parti_exp.runtime.console import quiet_library_noise
from parti_exp.runtime.key_suggestions import run_with_key_suggestions
from parti_exp.runtime.trust import trusting_checkpoints

# The page makes no requests of its own to Gradio's servers (usage statistics): set before gradio is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def load_demo_model(cfg: DictConfig, out_dir: Path) -> DemoModel:
    """The model of ``cfg.ckpt_path`` on its device, with the sample options the page starts from."""
    cfg = cfg.copy()
    cfg.ckpt_path = str(checkpoint_file(cfg.ckpt_path))
    scorer = cfg.get("scorer_ckpt")
    if scorer is None and (Path(cfg.ckpt_path) / SCORER).is_dir():
        scorer = str(Path(cfg.ckpt_path) / SCORER)  # exported beside the model (export ... scorer_ckpt=)
    with trusting_checkpoints(cfg.trust_checkpoint):
        checkpoint = read_checkpoint(cfg.ckpt_path)
        module, train_cfg = module_from_checkpoint(checkpoint)
    module = module.to(resolve_device(cfg.device)).eval()
    return DemoModel(module, train_cfg, checkpoint, cfg, out_dir, scorer)


def demo_app(cfg: DictConfig, out_dir: Path):
    """The page (a ``gradio.Blocks``) for ``cfg.ckpt_path``, not yet served."""
    try:
        from parti_exp.inference.demo_page import demo_page
    except ImportError as error:
        raise UnavailableError(f"the demo needs Gradio ({error}): pip install -e '.[demo]'") from None
    model = load_demo_model(cfg, out_dir)
    return demo_page(model, Path(cfg.ckpt_path).name)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="demo")
def main(cfg: DictConfig) -> None:
    quiet_library_noise()
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir) / "results"
    page = demo_app(cfg, out_dir)
    # queue(): progress lines and one click at a time per model (the module is shared by every visitor).
    page.queue(default_concurrency_limit=1).launch(server_name=cfg.host, server_port=cfg.port, allowed_paths=[
        str(out_dir)], show_error=True, quiet=False)


if __name__ == "__main__":
    run_with_key_suggestions(main, "demo")
