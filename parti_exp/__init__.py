"""parti_exp: GAN and Parti-style text-to-image experiments on Lightning + Hydra."""

from pathlib import Path

__version__ = "0.1.0"

# The Hydra config tree lives at the repository root (next to this package), so that
# `python -m parti_exp.train` finds it from any working directory with an editable install.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
