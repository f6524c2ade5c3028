"""A mistyped config key gets a "did you mean ...?" after Hydra's own error.

Hydra refuses ``trainer.max_epoch=5`` with "Key 'max_epoch' is not in struct" and exits; it never names the key the
user meant. ``run_with_key_suggestions`` runs a command's ``hydra.main`` function and, when it exits with an error,
composes the config again with the command line's group choices only (on that failure path alone) and, for every
typed key that the config does not have, prints the nearest keys beside it.
"""

from __future__ import annotations

import difflib
import sys
from typing import Callable

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from parti_exp import CONF_DIR


def unknown_key_suggestions(config_name: str, arguments: list[str]) -> list[str]:
    """One line per typed ``a.b.c=value`` whose key the composed ``config_name`` lacks, naming its nearest keys."""
    try:
        overrides = OverridesParser.create().parse_overrides([a for a in arguments if not a.startswith("-")])
    except Exception:  # a line Hydra cannot parse: its own message said so
        return []
    choices = [o.input_line for o in overrides
               if "." not in o.key_or_group and not (o.is_add() or o.is_delete() or o.is_sweep_override())]
    typed = [o for o in overrides if "." in o.key_or_group and not (o.is_add() or o.is_delete() or o.is_force_add())
             and not o.key_or_group.startswith("hydra.")]
    if not typed:
        return []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            cfg = compose(config_name=config_name, overrides=choices)
    except Exception:  # the group choices themselves fail: Hydra's message is about them
        return []
    lines = []
    for override in typed:
        parent_key, _, name = override.key_or_group.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key, throw_on_missing=False)
        if not isinstance(parent, DictConfig) or name in parent:
            continue
        close = difflib.get_close_matches(name, [str(k) for k in parent.keys()], n=3, cutoff=0.6)
        if close:
            names = " or ".join(f"{parent_key}.{key}" for key in close)
            lines.append(f"{override.key_or_group} is not a key of this config: did you mean {names}?")
    return lines


def run_with_key_suggestions(main: Callable[[], object], config_name: str) -> None:
    """Run a ``hydra.main`` function; when it exits with an error, print the suggestions for the keys typed."""
    try:
        main()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            for line in unknown_key_suggestions(config_name, sys.argv[1:]):
                print(line, file=sys.stderr)
        raise
